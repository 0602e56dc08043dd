"""Meta's one webhook for WhatsApp Cloud API, Messenger and Instagram (told apart by ``object``), and
the GET subscription handshake.

One POST may carry up to a thousand updates from several accounts. Each message becomes its own event
with its own dedup key, so a redelivered batch publishes only what was not stored before. A single
update that cannot be used (no id, no sender) is counted as ignored rather than failing the batch:
refusing the whole POST would make Meta redeliver the good messages for 36 hours and, after an hour
of failures, disable the webhook."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from omnirouter_gateway.inbound.base import (
    BadSignature,
    InboundEvent,
    Malformed,
    MissingSignature,
    NotConfigured,
    Parsed,
    RawRequest,
)
from omnirouter_gateway.inbound.util import clip, from_epoch, status_event_id
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, ThreadRef, Vendor
from omnirouter_shared.contracts.interactions import (
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
    interaction_id_for,
)
from omnirouter_shared.http.errors import json_error

JSON = frozenset({"application/json"})
HEADER = "X-Hub-Signature-256"
#: Meta documents webhook payloads of up to 3 MB; a 413 would only be retried for 36 hours.
MAX_PAYLOAD = 3 * 1024 * 1024
#: Ids and addresses longer than this are not Meta's (the contracts refuse them anyway).
_MAX_ID = 512
#: The challenge Meta sends is a short number; anything far longer is not a handshake.
_MAX_CHALLENGE = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_WA_STATUS = {
    "sent": InteractionStatus.SENT,
    "delivered": InteractionStatus.DELIVERED,
    "read": InteractionStatus.READ,
    "failed": InteractionStatus.FAILED,
}
_WA_MEDIA = ("image", "audio", "video", "document", "sticker")
_PAGE_CHANNELS = {
    "page": (Channel.MESSENGER, AddressKind.MESSENGER),
    "instagram": (Channel.INSTAGRAM, AddressKind.INSTAGRAM),
}


def json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise Malformed("body is not a JSON object")
    return data


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def objs(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def ident(value: Any) -> str | None:
    """A vendor id as text: Meta sends ids as strings, but numbers are accepted (never bools)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if isinstance(value, str) and 0 < len(value.strip()) <= _MAX_ID:
        return value.strip()
    return None


def text(value: Any) -> str | None:
    return clip(value) if isinstance(value, str) and value else None


def verify_signature(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise MissingSignature(f"{HEADER} header is missing")
    scheme, _, given = header.strip().partition("=")
    if scheme.lower() != "sha256" or not given:
        raise BadSignature(f"{HEADER} is not sha256=<hex>")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # surrogatepass: a header with any code point compares (and fails) instead of raising TypeError.
    if not hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "surrogatepass")):
        raise BadSignature(f"{HEADER} does not match the body")


class Meta:
    vendor = Vendor.META
    name = "meta"
    content_types = JSON

    def __init__(self, app_secret: str | None, max_body: int) -> None:
        self._secret = app_secret
        self.max_body = max(max_body, MAX_PAYLOAD)

    def configured(self) -> bool:
        return bool(self._secret)

    def verify(self, request: RawRequest, now: float) -> None:
        if not self._secret:
            raise NotConfigured("META_APP_SECRET is not set")
        verify_signature(self._secret, request.body, request.headers.get(HEADER))

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        body = json_object(request.body)
        kind = body.get("object")
        entries = body.get("entry")
        if not isinstance(kind, str) or not isinstance(entries, list):
            raise Malformed("Meta webhook without object and entry[]")
        parsed = Parsed()
        if kind == "whatsapp_business_account":
            for entry in entries:
                self._whatsapp_entry(obj(entry), received_at, parsed)
        elif kind in _PAGE_CHANNELS:
            for entry in entries:
                self._page_entry(kind, obj(entry), received_at, parsed)
        else:
            # Another product subscribed to the same app (feed, permissions...): not a contact.
            parsed.ignored += max(1, len(entries))
        _drop_repeats(parsed)
        return parsed

    def success(self, parsed: Parsed) -> web.Response:
        return web.json_response({"ok": True, "events": len(parsed.events), "ignored": parsed.ignored})

    # WhatsApp Cloud API: entry[].changes[].value.{metadata, contacts[], messages[], statuses[]}

    def _whatsapp_entry(self, entry: dict[str, Any], received_at: datetime, parsed: Parsed) -> None:
        changes = entry.get("changes")
        if not isinstance(changes, list) or not changes:
            parsed.ignored += 1
            return
        for change in changes:
            value = obj(obj(change).get("value"))
            messages = [m for m in objs(value.get("messages"))]
            statuses = [s for s in objs(value.get("statuses"))]
            if not messages and not statuses:
                parsed.ignored += 1  # template/account/quality updates: no contact
                continue
            metadata = obj(value.get("metadata"))
            number_id = ident(metadata.get("phone_number_id"))
            display = _digits(metadata.get("display_phone_number")) or number_id
            # Replies are sent from the phone number id: it scopes the business number.
            business = _address(AddressKind.WHATSAPP, display, namespace=number_id) if display else None
            names = {
                ident(c.get("wa_id")): text(obj(c.get("profile")).get("name"))
                for c in objs(value.get("contacts"))
            }
            context = {
                "object": "whatsapp_business_account",
                "entry_id": ident(entry.get("id")),
                "field": obj(change).get("field"),
                "metadata": metadata,
            }
            for message in messages:
                event = _wa_message(message, business, names, context, received_at)
                _add(parsed, event)
            for status in statuses:
                _add(parsed, _wa_status(status, context, received_at))

    # Messenger and Instagram: entry[].messaging[] with sender, recipient and one of message,
    # postback, delivery, read, reaction...

    def _page_entry(self, kind: str, entry: dict[str, Any], received_at: datetime, parsed: Parsed) -> None:
        channel, address_kind = _PAGE_CHANNELS[kind]
        page = ident(entry.get("id"))
        events = entry.get("messaging")
        if not isinstance(events, list):
            # changes[] (comments, mentions) and standby[] (another app owns the thread): no contact.
            parsed.ignored += 1
            return
        for raw in events:
            update = obj(raw)
            sender = ident(obj(update.get("sender")).get("id"))
            namespace = ident(obj(update.get("recipient")).get("id")) or page
            if sender is None or namespace is None:
                parsed.ignored += 1
                continue
            customer = _address(address_kind, sender, namespace=namespace)
            business = _address(address_kind, namespace)
            context = {"object": kind, "entry_id": page, "messaging": update}
            if customer is None or business is None:
                parsed.ignored += 1
            elif "message" in update:
                _add(parsed, _page_message(update, channel, customer, business, context, received_at))
            elif "postback" in update:
                _add(parsed, _page_postback(update, channel, customer, business, context, received_at))
            elif "delivery" in update or "read" in update:
                receipts = _page_receipts(update, channel, customer, context, received_at)
                if receipts:
                    parsed.events.extend(receipts)
                else:
                    parsed.ignored += 1
            else:
                parsed.ignored += 1


def _add(parsed: Parsed, event: InboundEvent | None) -> None:
    if event is None:
        parsed.ignored += 1
    else:
        parsed.events.append(event)


def _drop_repeats(parsed: Parsed) -> None:
    """The same message twice in one POST is one event: the dedup store would otherwise see the second
    as in flight behind the first, in the same request, and wait for itself."""
    seen: set[str] = set()
    unique: list[InboundEvent] = []
    for event in parsed.events:
        if event.dedup_key in seen:
            parsed.ignored += 1
        else:
            seen.add(event.dedup_key)
            unique.append(event)
    parsed.events = unique


def _digits(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    digits = "".join(c for c in value if c.isascii() and c.isdigit())
    return digits if 0 < len(digits) <= _MAX_ID else None


def _address(
    kind: AddressKind, value: str, *, namespace: str | None = None, display_name: str | None = None
) -> Address | None:
    try:
        return Address(kind=kind, value=value, namespace=namespace, display_name=display_name)
    except ValidationError:
        return None


def _media(kind: str, media: dict[str, Any]) -> Attachment | None:
    media_id = ident(media.get("id"))
    if media_id is None:
        return None
    mime = media.get("mime_type")
    filename = media.get("filename")
    return Attachment(
        # Media is fetched from the Graph API by id (with the access token) when someone needs it.
        url=f"meta-media:{media_id}",
        content_type=mime if isinstance(mime, str) else None,
        filename=filename if isinstance(filename, str) else None,
    )


def _wa_content(message: dict[str, Any]) -> tuple[str | None, list[Attachment], str | None]:
    """Text, attachments and the id of the message it answers (replies, reactions)."""
    kind = message.get("type")
    reply_to = ident(obj(message.get("context")).get("id"))
    attachments: list[Attachment] = []
    body: str | None = None
    if kind == "text":
        body = text(obj(message.get("text")).get("body"))
    elif kind in _WA_MEDIA:
        media = obj(message.get(kind))
        attachment = _media(kind, media)
        if attachment is not None:
            attachments.append(attachment)
        body = text(media.get("caption"))
    elif kind == "location":
        loc = obj(message.get("location"))
        lat, lng = loc.get("latitude"), loc.get("longitude")
        parts = [p for p in (text(loc.get("name")), text(loc.get("address"))) if p]
        if _is_number(lat) and _is_number(lng):
            parts.append(f"({lat}, {lng})")
            attachments.append(Attachment(url=f"geo:{lat},{lng}"))
        body = ", ".join(parts) or None
    elif kind == "contacts":
        lines = []
        for contact in objs(message.get("contacts")):
            name = text(obj(contact.get("name")).get("formatted_name")) or ""
            phones = [p["phone"] for p in objs(contact.get("phones")) if isinstance(p.get("phone"), str)]
            lines.append(f"{name}: {', '.join(phones)}" if phones else name)
        body = clip("\n".join(line for line in lines if line)) or None
    elif kind == "interactive":
        interactive = obj(message.get("interactive"))
        reply = obj(interactive.get(str(interactive.get("type"))))
        body = text(reply.get("title")) or text(reply.get("body")) or text(reply.get("response_json"))
    elif kind == "button":
        body = text(obj(message.get("button")).get("text"))
    elif kind == "reaction":
        reaction = obj(message.get("reaction"))
        # An empty emoji is a reaction taken back; still an event, without text.
        body = text(reaction.get("emoji"))
        reply_to = ident(reaction.get("message_id")) or reply_to
    elif kind == "order":
        body = text(obj(message.get("order")).get("text"))
    # Anything else (system, unsupported, types Meta adds later) travels in vendor_fields only.
    return body, attachments, reply_to


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wa_message(
    message: dict[str, Any],
    business: Address | None,
    names: dict[str | None, str | None],
    context: dict[str, Any],
    received_at: datetime,
) -> InboundEvent | None:
    wamid = ident(message.get("id"))
    wa_id = _digits(message.get("from"))
    if wamid is None or wa_id is None or business is None:
        return None
    sender = _address(AddressKind.WHATSAPP, wa_id, display_name=clip(names.get(wa_id), 200))
    if sender is None:
        return None
    body, attachments, reply_to = _wa_content(message)
    contact = names.get(wa_id)
    payload = InteractionReceived(
        interaction_id=interaction_id_for(Vendor.META, wamid),
        channel=Channel.WHATSAPP,
        vendor=Vendor.META,
        vendor_message_id=wamid,
        sender=sender,
        recipient=business,
        text=body,
        attachments=tuple(attachments),
        sent_at=from_epoch(message.get("timestamp")),
        received_at=received_at,
        thread=ThreadRef(message_id=wamid, in_reply_to=reply_to),
        vendor_fields={**context, "message": message, "profile_name": contact},
    )
    return InboundEvent(
        dedup_key=f"msg:{wamid}", event_id=payload.interaction_id, kafka_key=sender.key, payload=payload
    )


def _wa_status(status: dict[str, Any], context: dict[str, Any], received_at: datetime) -> InboundEvent | None:
    wamid = ident(status.get("id"))
    raw = status.get("status")
    state = _WA_STATUS.get(raw) if isinstance(raw, str) else None
    wa_id = _digits(status.get("recipient_id"))
    if wamid is None or state is None or wa_id is None:
        return None
    customer = _address(AddressKind.WHATSAPP, wa_id)
    if customer is None:
        return None
    errors = [
        f"{e.get('code')}: {e.get('title') or e.get('message') or ''}".strip()
        for e in objs(status.get("errors"))
    ]
    dedup = f"status:{wamid}:{raw}"
    payload = InteractionStatusChanged(
        interaction_id=interaction_id_for(Vendor.META, wamid),
        direction="outbound",
        channel=Channel.WHATSAPP,
        vendor=Vendor.META,
        vendor_message_id=wamid,
        customer_address=customer,
        status=state,
        occurred_at=from_epoch(status.get("timestamp")) or received_at,
        error=clip("; ".join(errors), 2000) or None,
        vendor_fields={**context, "status": status},
    )
    return InboundEvent(
        dedup_key=dedup, event_id=status_event_id("meta", dedup), kafka_key=customer.key, payload=payload
    )


def _page_message(
    update: dict[str, Any],
    channel: Channel,
    customer: Address,
    business: Address,
    context: dict[str, Any],
    received_at: datetime,
) -> InboundEvent | None:
    message = obj(update.get("message"))
    mid = ident(message.get("mid"))
    # Echoes are our own sends coming back; deletions (Instagram unsend) are not contacts.
    if mid is None or message.get("is_echo") is True or message.get("is_deleted") is True:
        return None
    attachments = []
    for item in objs(message.get("attachments")):
        url = obj(item.get("payload")).get("url")
        if isinstance(url, str) and url:
            attachments.append(Attachment(url=url))
    reply_to = ident(obj(message.get("reply_to")).get("mid"))
    body = text(message.get("text"))
    return _page_event(
        mid, channel, customer, business, body, attachments, reply_to, update, context, received_at
    )


def _page_postback(
    update: dict[str, Any],
    channel: Channel,
    customer: Address,
    business: Address,
    context: dict[str, Any],
    received_at: datetime,
) -> InboundEvent | None:
    """A button press. Its ``mid`` identifies it; older postbacks without one are identified by who
    pressed what when, which is the same on every redelivery."""
    postback = obj(update.get("postback"))
    mid = ident(postback.get("mid"))
    if mid is None:
        stamp = ident(update.get("timestamp"))
        if stamp is None:
            return None
        mid = f"postback:{customer.namespace}:{customer.value}:{stamp}"[:_MAX_ID]
    label = text(postback.get("title")) or text(postback.get("payload"))
    return _page_event(mid, channel, customer, business, label, [], None, update, context, received_at)


def _page_event(
    mid: str,
    channel: Channel,
    customer: Address,
    business: Address,
    body: str | None,
    attachments: list[Attachment],
    reply_to: str | None,
    update: dict[str, Any],
    context: dict[str, Any],
    received_at: datetime,
) -> InboundEvent:
    payload = InteractionReceived(
        interaction_id=interaction_id_for(Vendor.META, mid),
        channel=channel,
        vendor=Vendor.META,
        vendor_message_id=mid,
        sender=customer,
        recipient=business,
        text=body,
        attachments=tuple(attachments),
        sent_at=from_epoch(update.get("timestamp")),
        received_at=received_at,
        thread=ThreadRef(message_id=mid, in_reply_to=reply_to),
        vendor_fields=context,
    )
    return InboundEvent(
        dedup_key=f"msg:{mid}", event_id=payload.interaction_id, kafka_key=customer.key, payload=payload
    )


def _page_receipts(
    update: dict[str, Any],
    channel: Channel,
    customer: Address,
    context: dict[str, Any],
    received_at: datetime,
) -> list[InboundEvent]:
    """Messenger delivery receipts name the messages (``delivery.mids``), and Instagram's read receipts
    name one (``read.mid``); a bare watermark names none and is not turned into events."""
    if "delivery" in update:
        state, raw = InteractionStatus.DELIVERED, obj(update.get("delivery"))
        listed = raw.get("mids")
        mids: list[Any] = listed if isinstance(listed, list) else []
    else:
        state, raw = InteractionStatus.READ, obj(update.get("read"))
        mids = [raw.get("mid")]
    events = []
    for mid in dict.fromkeys(m for m in (ident(x) for x in mids) if m is not None):
        dedup = f"status:{mid}:{state.value}"
        payload = InteractionStatusChanged(
            interaction_id=interaction_id_for(Vendor.META, mid),
            direction="outbound",
            channel=channel,
            vendor=Vendor.META,
            vendor_message_id=mid,
            customer_address=customer,
            status=state,
            occurred_at=from_epoch(update.get("timestamp")) or received_at,
            vendor_fields=context,
        )
        events.append(
            InboundEvent(
                dedup_key=dedup,
                event_id=status_event_id("meta", dedup),
                kafka_key=customer.key,
                payload=payload,
            )
        )
    return events


def verification_handler(settings: GatewaySettings) -> Handler:
    """Meta's subscription handshake: echo ``hub.challenge`` when ``hub.verify_token`` is ours."""
    token = settings.meta_verify_token.get_secret_value() if settings.meta_verify_token else None

    async def handle(request: web.Request) -> web.StreamResponse:
        if not token:
            return json_error(
                503, "vendor_not_configured", "META_VERIFY_TOKEN is not set", headers={"Retry-After": "5"}
            )
        mode = request.query.get("hub.mode", "")
        given = request.query.get("hub.verify_token", "")
        challenge = request.query.get("hub.challenge", "")
        matches = hmac.compare_digest(token.encode(), given.encode("utf-8", "surrogatepass"))
        if mode != "subscribe" or not matches:
            return json_error(403, "verification_failed", "hub.mode or hub.verify_token is not accepted")
        if not challenge or len(challenge) > _MAX_CHALLENGE:
            return json_error(400, "malformed", "hub.challenge is missing or too long")
        return web.Response(
            text=challenge, content_type="text/plain", headers={"X-Content-Type-Options": "nosniff"}
        )

    return handle
