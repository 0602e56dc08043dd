"""SendGrid Inbound Parse: an email posted as multipart/form-data, either parsed into fields
(``headers``, ``from``, ``to``, ``subject``, ``text``, ``html``, ``envelope``, ``attachmentN``...) or,
with "POST the raw, full MIME message" ticked, whole in the ``email`` field.

Authentication: SendGrid's signed-webhook scheme (ECDSA P-256 over ``timestamp + body``) when a public
key is configured; otherwise HTTP basic auth embedded in the Parse URL. One of the two must be set."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from datetime import datetime

import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from omnirouter_gateway.inbound import email_mime as mime
from omnirouter_gateway.inbound.base import (
    BadSignature,
    Malformed,
    MissingSignature,
    NotConfigured,
    Parsed,
    RawRequest,
    StaleTimestamp,
)
from omnirouter_shared.contracts.common import Address, Attachment, Vendor

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MULTIPART = frozenset({"multipart/form-data"})
#: Mail content: never copied into vendor_fields.
_BODY_FIELDS = frozenset({"email", "headers", "text", "html", "attachment-info", "content-ids"})


def load_public_key(text: str) -> ec.EllipticCurvePublicKey | None:
    """SendGrid shows the key as base64 DER; a PEM block is accepted too."""
    try:
        key = (
            load_pem_public_key(text.encode())
            if "BEGIN PUBLIC KEY" in text
            else load_der_public_key(base64.b64decode(text, validate=False))
        )
    except (ValueError, TypeError, binascii.Error):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


class SendGridInboundParse:
    name = "sendgrid_inbound"
    vendor = Vendor.SENDGRID
    content_types = MULTIPART

    def __init__(
        self, public_key: str | None, basic_auth: str | None, max_body: int, tolerance_s: float
    ) -> None:
        self._key = load_public_key(public_key) if public_key else None
        self._key_invalid = bool(public_key) and self._key is None
        self._basic = basic_auth.encode() if basic_auth and ":" in basic_auth else None
        self.max_body = max_body
        self._tolerance_s = tolerance_s

    def configured(self) -> bool:
        return self._key is not None or (self._basic is not None and not self._key_invalid)

    # -- verification ------------------------------------------------------------------------------
    def verify(self, request: RawRequest, now: float) -> None:
        if self._key_invalid:
            raise NotConfigured("SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 public key")
        if self._key is not None:
            self._verify_signature(self._key, request, now)
        elif self._basic is not None:
            self._verify_basic(self._basic, request)
        else:
            raise NotConfigured("neither SENDGRID_WEBHOOK_PUBLIC_KEY nor SENDGRID_BASIC_AUTH is set")

    def _verify_signature(self, key: ec.EllipticCurvePublicKey, request: RawRequest, now: float) -> None:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise MissingSignature(f"{SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required")
        try:
            when = int(timestamp)
        except ValueError as exc:
            raise BadSignature(f"{TIMESTAMP_HEADER} is not a number") from exc
        if abs(now - when) > self._tolerance_s:
            raise StaleTimestamp(f"{TIMESTAMP_HEADER} is outside the accepted window")
        try:
            der = base64.b64decode(signature, validate=True)
            key.verify(der, timestamp.encode() + request.body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise BadSignature(f"{SIGNATURE_HEADER} does not match the request") from exc

    @staticmethod
    def _verify_basic(expected: bytes, request: RawRequest) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value.strip():
            raise MissingSignature("basic authentication is required")
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadSignature("basic authentication is not base64") from exc
        if not hmac.compare_digest(given, expected):
            raise BadSignature("basic authentication does not match")

    # -- parsing -----------------------------------------------------------------------------------
    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        content_type = request.headers.get("Content-Type", "")
        parts = mime.form_data(request.body, content_type)
        fields = {p.name: p for p in parts if p.filename is None}
        charsets = _json_object(fields.get("charsets"))

        def text(name: str) -> str | None:
            part = fields.get(name)
            return part.text(str(charsets.get(name) or "utf-8")) if part is not None else None

        kept = mime.small_fields(
            [(p.name, text(p.name) or "") for p in parts if p.filename is None], _BODY_FIELDS
        )
        envelope_to = _envelope_recipient(text("envelope"))
        raw = fields.get("email")
        mail = mime.parse_email(raw.data) if raw is not None else self._parsed_form(parts, text, request.body)
        event = mime.email_event(Vendor.SENDGRID, mail, received_at, kept, envelope_to)
        return Parsed(events=[event])

    @staticmethod
    def _parsed_form(
        parts: list[mime.FormPart], text: Callable[[str], str | None], body: bytes
    ) -> mime.ParsedEmail:
        headers = mime.parse_header_block(text("headers") or "")
        ids = mime.message_ids(mime.header_text(headers, "Message-ID"))
        # Without a Message-ID, the mail's own content identifies it across SendGrid's retries.
        content = "\0".join(text(n) or "" for n in ("headers", "from", "subject", "text", "html"))
        message_id = ids[0] if ids else mime.fallback_id(content.encode("utf-8", "replace") or body)
        found = mime.first_address(headers, "From")
        sender = mime.parse_address_text(text("from")) or (
            mime.email_address(found) if found is not None else None
        )
        if sender is None:
            raise Malformed("SendGrid email without a usable from address")
        to = mime.parse_address_text(text("to"))
        if to is None:
            found_to = mime.first_address(headers, "To")
            to = mime.email_address(found_to) if found_to is not None else None
        plain = text("text")
        html = text("html")
        body_text = (
            mime.tidy(plain) if plain and plain.strip() else (mime.html_to_text(html) if html else None)
        )
        subject = text("subject") or mime.header_text(headers, "Subject")
        files = [p for p in parts if p.filename is not None and p.name.startswith("attachment")]
        attachments: list[Attachment] = [
            mime.attachment_ref(message_id, i, p.filename, p.content_type, len(p.data))
            for i, p in enumerate(files[:100])
        ]
        return mime.ParsedEmail(
            sender=sender,
            recipient=to,
            subject=subject[:1000] if subject else None,
            message_id=message_id,
            thread=mime.thread_of(headers, message_id),
            text=body_text or None,
            attachments=tuple(attachments),
            sent_at=mime.sent_at(headers),
        )

    def success(self, parsed: Parsed) -> web.Response:
        return web.json_response({"status": "accepted"})


def _json_object(part: mime.FormPart | None) -> dict[str, object]:
    if part is None:
        return {}
    try:
        value = orjson.loads(part.data)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _envelope_recipient(envelope: str | None) -> Address | None:
    if not envelope:
        return None
    try:
        value = orjson.loads(envelope)
    except orjson.JSONDecodeError:
        return None
    to = value.get("to") if isinstance(value, dict) else None
    first = to[0] if isinstance(to, list) and to else to
    return mime.parse_address_text(first) if isinstance(first, str) else None
