"""Vonage Messages API: inbound messages and message status callbacks on one signed JSON endpoint.

Vonage signs each callback with an HS256 JWT (the account's signature secret) whose ``payload_hash``
claim binds the raw body, and whose ``iat`` bounds replays of a captured request."""

from __future__ import annotations

import hashlib
import hmac
import math
import warnings
from datetime import datetime
from typing import Any

import jwt
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
from omnirouter_gateway.inbound.meta import JSON, ident, json_object, obj, text
from omnirouter_gateway.inbound.util import clip, from_iso, status_event_id
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, ThreadRef, Vendor
from omnirouter_shared.contracts.interactions import (
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
    interaction_id_for,
)

_STATUS = {
    "submitted": InteractionStatus.SENT,
    "delivered": InteractionStatus.DELIVERED,
    "read": InteractionStatus.READ,
    "rejected": InteractionStatus.FAILED,
    "undeliverable": InteractionStatus.FAILED,
}
#: Vonage channel -> our channel and the kind of address its ``from`` is. Viber identifies users by
#: phone number and the contracts have no Viber channel: its messages are phone contacts, and the
#: original channel stays in vendor_fields for the reply path.
_CHANNELS = {
    "sms": (Channel.SMS, AddressKind.PHONE),
    "mms": (Channel.MMS, AddressKind.PHONE),
    "viber_service": (Channel.SMS, AddressKind.PHONE),
    "whatsapp": (Channel.WHATSAPP, AddressKind.WHATSAPP),
    "messenger": (Channel.MESSENGER, AddressKind.MESSENGER),
    "instagram": (Channel.INSTAGRAM, AddressKind.INSTAGRAM),
}
_MEDIA = ("image", "audio", "video", "file", "vcard", "sticker")


def _endpoint(value: Any) -> str | None:
    """``from``/``to`` are strings in Messages API v1, objects (``number`` or ``id``) in v0.1."""
    if isinstance(value, dict):
        return ident(value.get("number")) or ident(value.get("id"))
    return ident(value)


def _address(kind: AddressKind, raw: str, business: str, name: str | None = None) -> Address:
    if kind is AddressKind.PHONE:
        # Vonage sends E.164 without the "+"; with it the number is not read as a national one.
        value = f"+{raw}" if raw.isascii() and raw.isdigit() else raw
        return Address(kind=kind, value=value, display_name=name)
    if kind is AddressKind.WHATSAPP:
        return Address(kind=kind, value=raw.lstrip("+"), display_name=name)
    # Messenger and Instagram ids are scoped to the page / account the message was sent to.
    return Address(kind=kind, value=raw, namespace=business, display_name=name)


def _content(body: dict[str, Any], message_type: str) -> tuple[str | None, list[Attachment], str | None]:
    attachments: list[Attachment] = []
    parts: list[str] = []
    reply_to = ident(obj(body.get("context")).get("message_uuid"))
    if message_type == "text":
        parts.append(text(body.get("text")) or "")
    elif message_type in _MEDIA:
        media = obj(body.get(message_type))
        url = media.get("url")
        if isinstance(url, str) and url:
            name = media.get("name")
            attachments.append(Attachment(url=url, filename=name if isinstance(name, str) else None))
        parts.append(text(media.get("caption")) or "")
    elif message_type == "location":
        loc = obj(body.get("location"))
        lat, lng = loc.get("lat"), loc.get("long")
        parts.extend(p for p in (text(loc.get("name")), text(loc.get("address"))) if p)
        if _is_number(lat) and _is_number(lng):
            attachments.append(Attachment(url=f"geo:{lat},{lng}"))
            parts.append(f"({lat}, {lng})")
    elif message_type == "reply":
        reply = obj(body.get("reply"))
        parts.append(text(reply.get("title")) or "")
    elif message_type == "button":
        parts.append(text(obj(body.get("button")).get("text")) or "")
    elif message_type == "reaction":
        parts.append(text(obj(body.get("reaction")).get("emoji")) or "")
    # Other types (order, unsupported, types added later) travel in vendor_fields only.
    return clip("\n".join(p for p in parts if p)) or None, attachments, reply_to


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> float | None:
    """A JSON number usable as a time (NaN would pass every comparison unnoticed)."""
    if not _is_number(value):
        return None
    try:
        number = float(value)
    except OverflowError:  # PyJWT's JSON decoder accepts integers of any length
        return None
    return number if math.isfinite(number) else None


def _decode(secret: str, token: str) -> dict[str, Any]:
    try:
        with warnings.catch_warnings():
            # The secret is Vonage's to choose; a short one is not a reason to refuse its callbacks.
            warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
            claims: dict[str, Any] = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={
                    "require": ["iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
    except jwt.MissingRequiredClaimError as exc:
        raise BadSignature("the JWT has no iat claim") from exc
    except jwt.InvalidSignatureError as exc:
        raise BadSignature("the JWT's signature does not match") from exc
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise BadSignature(f"not a valid HS256 JWT ({type(exc).__name__})") from exc
    return claims


class Vonage:
    vendor = Vendor.VONAGE
    name = "vonage"
    content_types = JSON

    def __init__(self, signature_secret: str | None, tolerance_s: int, max_body: int) -> None:
        self._secret = signature_secret
        self._tolerance_s = tolerance_s
        self.max_body = max_body

    def configured(self) -> bool:
        return bool(self._secret)

    def verify(self, request: RawRequest, now: float) -> None:
        if not self._secret:
            raise NotConfigured("VONAGE_SIGNATURE_SECRET is not set")
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise MissingSignature("Authorization: Bearer <JWT> is missing")
        claims = _decode(self._secret, token.strip())
        iat = _finite(claims.get("iat"))
        if iat is None:
            raise BadSignature("the JWT's iat is not a number")
        # Checked against the injected clock (PyJWT's own checks are off): both directions, since a
        # token from the future is as replayable as an old one.
        if abs(now - iat) > self._tolerance_s:
            raise StaleTimestamp(f"the JWT was issued more than {self._tolerance_s} s from now")
        exp = _finite(claims.get("exp"))
        if exp is not None and exp < now:
            raise StaleTimestamp("the JWT has expired")
        claimed = claims.get("payload_hash")
        if not isinstance(claimed, str):
            raise BadSignature("the JWT has no payload_hash claim")
        digest = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(digest.encode(), claimed.lower().encode("utf-8", "surrogatepass")):
            raise BadSignature("payload_hash does not match the body")

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        body = json_object(request.body)
        uuid_ = ident(body.get("message_uuid"))
        if uuid_ is None:
            raise Malformed("Vonage callback without message_uuid")
        channel_name = body.get("channel")
        mapped = _CHANNELS.get(channel_name) if isinstance(channel_name, str) else None
        sender_raw = _endpoint(body.get("from"))
        recipient_raw = _endpoint(body.get("to"))
        if "status" in body:
            return self._status(body, uuid_, mapped, recipient_raw, sender_raw, received_at)
        if sender_raw is None or recipient_raw is None:
            raise Malformed("Vonage inbound message without from and to")
        if mapped is None:
            # A channel this gateway cannot address a reply on: acknowledged, not routed.
            return Parsed(ignored=1)
        channel, kind = mapped
        name = text(obj(body.get("profile")).get("name"))
        message_type = body.get("message_type")
        content_type = message_type if isinstance(message_type, str) else ""
        message_text, attachments, reply_to = _content(body, content_type)
        if attachments and channel is Channel.SMS and channel_name == "sms":
            channel = Channel.MMS
        try:
            sender = _address(kind, sender_raw, recipient_raw, clip(name, 200))
            recipient = _address(kind, recipient_raw, recipient_raw)
            payload = InteractionReceived(
                interaction_id=interaction_id_for(Vendor.VONAGE, uuid_),
                channel=channel,
                vendor=Vendor.VONAGE,
                vendor_message_id=uuid_,
                sender=sender,
                recipient=recipient,
                text=message_text,
                attachments=tuple(attachments),
                sent_at=from_iso(body.get("timestamp")),
                received_at=received_at,
                thread=ThreadRef(message_id=uuid_, in_reply_to=reply_to),
                vendor_fields=body,
            )
        except ValidationError as exc:
            raise Malformed(f"Vonage message is not usable: {exc.error_count()} invalid field(s)") from exc
        event = InboundEvent(
            dedup_key=f"msg:{uuid_}", event_id=payload.interaction_id, kafka_key=sender.key, payload=payload
        )
        return Parsed(events=[event])

    def _status(
        self,
        body: dict[str, Any],
        uuid_: str,
        mapped: tuple[Channel, AddressKind] | None,
        customer_raw: str | None,
        business_raw: str | None,
        received_at: datetime,
    ) -> Parsed:
        """A receipt for a message we sent: the customer is its ``to``."""
        raw = body.get("status")
        state = _STATUS.get(raw) if isinstance(raw, str) else None
        if state is None or mapped is None:
            # Unknown states (and channels) are acknowledged; Vonage would otherwise retry for 24 h.
            return Parsed(ignored=1)
        if customer_raw is None:
            raise Malformed("Vonage status callback without to")
        channel, kind = mapped
        error = obj(body.get("error"))
        reason = " ".join(str(error[k]) for k in ("title", "detail") if isinstance(error.get(k), str | int))
        dedup = f"status:{uuid_}:{raw}"
        try:
            customer = _address(kind, customer_raw, business_raw or customer_raw)
            payload = InteractionStatusChanged(
                interaction_id=interaction_id_for(Vendor.VONAGE, uuid_),
                direction="outbound",
                channel=channel,
                vendor=Vendor.VONAGE,
                vendor_message_id=uuid_,
                customer_address=customer,
                status=state,
                occurred_at=from_iso(body.get("timestamp")) or received_at,
                error=clip(reason, 2000) or None,
                vendor_fields=body,
            )
        except ValidationError as exc:
            raise Malformed(f"Vonage status is not usable: {exc.error_count()} invalid field(s)") from exc
        event = InboundEvent(
            dedup_key=dedup,
            event_id=status_event_id("vonage", dedup),
            kafka_key=customer.key,
            payload=payload,
        )
        return Parsed(events=[event])

    def success(self, parsed: Parsed) -> web.Response:
        return web.json_response({"ok": True, "events": len(parsed.events), "ignored": parsed.ignored})
