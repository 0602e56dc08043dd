"""Web chat from a chat backend (server to server), signed the Standard Webhooks way, and the event
builder shared with the gateway's own widget endpoints (``webchat_browser``).

Body: ``{conversation_id, message_id, sender{visitor_id, name?, email?}, text, attachments[], sent_at}``.
Signature: ``webhook-signature: v1,<base64 HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")>``
(several, space separated, during a key rotation); the secret is ``whsec_<base64>``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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
    StaleTimestamp,
)
from omnirouter_gateway.inbound.util import clip, from_iso
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, ThreadRef, Vendor
from omnirouter_shared.contracts.interactions import InteractionReceived, interaction_id_for

JSON = frozenset({"application/json"})
#: The business side of a web chat: replies go out "from" it (the gateway's widget or the backend).
WIDGET = Address(kind=AddressKind.WEBCHAT, value="widget")
BACKEND = Address(kind=AddressKind.WEBCHAT, value="chat-backend")
MAX_ID = 200


def webhook_secret(value: str | None) -> bytes | None:
    """``whsec_<base64>`` (or bare base64) -> key bytes; None when unusable."""
    if not value:
        return None
    text = value.removeprefix("whsec_")
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def sign(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_standard(key: bytes, headers: Any, body: bytes, now: float, tolerance_s: float) -> str:
    """Check a Standard Webhooks signature; return the ``webhook-id``."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise MissingSignature("webhook-id, webhook-timestamp and webhook-signature are required")
    try:
        when = int(timestamp)
    except ValueError as exc:
        raise BadSignature("webhook-timestamp is not a number") from exc
    if abs(now - when) > tolerance_s:
        raise StaleTimestamp("webhook-timestamp is outside the accepted window")
    # Over the header's exact text: that is what the sender signed.
    expected = sign(key, msg_id, timestamp, body).encode()
    for candidate in signatures.split(" ")[:10]:
        if hmac.compare_digest(candidate.strip().encode(), expected):
            return str(msg_id)
    raise BadSignature("no webhook-signature matches the request")


def _text(value: Any, field: str, limit: int, *, required: bool = False) -> str | None:
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{field} must be a string")
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise Malformed(f"web chat message without {field}")
        return None
    if len(text) > limit:
        raise Malformed(f"{field} is longer than {limit} characters")
    return text


def attachments_of(value: Any) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 20:
        raise Malformed("attachments must be a list of at most 20 items")
    out = []
    for item in value:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, dict):
            raise Malformed("an attachment must be an object with a url")
        url = _text(item.get("url"), "attachments[].url", 2000, required=True)
        size = item.get("size")
        out.append(
            Attachment(
                url=url or "",
                content_type=_text(item.get("content_type"), "attachments[].content_type", 200),
                filename=_text(item.get("filename"), "attachments[].filename", 255),
                size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
            )
        )
    return tuple(out)


def webchat_event(
    *,
    vendor_message_id: str,
    visitor_id: str,
    name: str | None,
    email: str | None,
    text: str | None,
    attachments: tuple[Attachment, ...],
    sent_at: datetime | None,
    conversation_id: str | None,
    received_at: datetime,
    recipient: Address,
    vendor_fields: dict[str, Any],
) -> InboundEvent:
    if not text and not attachments:
        raise Malformed("web chat message without text or attachments")
    sender = Address(kind=AddressKind.WEBCHAT, value=visitor_id, display_name=name)
    # An email a visitor typed proves nothing: identity-resolution weighs it as a claim only.
    claimed = (Address(kind=AddressKind.EMAIL, value=email, verified=False),) if email else ()
    try:
        payload = InteractionReceived(
            interaction_id=interaction_id_for(Vendor.WEBCHAT, vendor_message_id),
            channel=Channel.WEBCHAT,
            vendor=Vendor.WEBCHAT,
            vendor_message_id=vendor_message_id,
            sender=sender,
            recipient=recipient,
            claimed_identifiers=claimed,
            text=clip(text),
            attachments=attachments,
            sent_at=sent_at,
            received_at=received_at,
            thread=ThreadRef(vendor_conversation_id=conversation_id),
            vendor_fields=vendor_fields,
        )
    except ValidationError as exc:
        raise Malformed(f"web chat message cannot be represented: {exc.errors()[0]['msg']}") from exc
    return InboundEvent(
        dedup_key=f"msg:{vendor_message_id}",
        event_id=payload.interaction_id,
        kafka_key=sender.key,
        payload=payload,
    )


class WebchatWebhook:
    name = "webchat_webhook"
    vendor = Vendor.WEBCHAT
    content_types = JSON

    def __init__(self, secret: str | None, max_body: int, tolerance_s: float) -> None:
        self._key = webhook_secret(secret)
        self.max_body = max_body
        self._tolerance_s = tolerance_s

    def configured(self) -> bool:
        return self._key is not None

    def verify(self, request: RawRequest, now: float) -> None:
        if self._key is None:
            raise NotConfigured("WEBCHAT_WEBHOOK_SECRET is not set (or is not whsec_<base64>)")
        verify_standard(self._key, request.headers, request.body, now, self._tolerance_s)

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise Malformed("body is not JSON") from exc
        if not isinstance(body, dict):
            raise Malformed("body is not a JSON object")
        sender = body.get("sender")
        if not isinstance(sender, dict):
            raise Malformed("web chat message without sender")
        message_id = _text(body.get("message_id"), "message_id", MAX_ID, required=True) or ""
        event = webchat_event(
            vendor_message_id=message_id,
            visitor_id=_text(sender.get("visitor_id"), "sender.visitor_id", MAX_ID, required=True) or "",
            name=_text(sender.get("name"), "sender.name", 200),
            email=_text(sender.get("email"), "sender.email", 320),
            text=_text(body.get("text"), "text", 64_000),
            attachments=attachments_of(body.get("attachments")),
            sent_at=from_iso(body.get("sent_at")),
            conversation_id=_text(body.get("conversation_id"), "conversation_id", MAX_ID),
            received_at=received_at,
            recipient=BACKEND,
            vendor_fields={k: v for k, v in body.items() if k not in {"text", "attachments"}},
        )
        return Parsed(events=[event])

    def success(self, parsed: Parsed) -> web.Response:
        return web.json_response({"status": "accepted"})
