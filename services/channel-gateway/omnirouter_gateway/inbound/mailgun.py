"""Mailgun routes (``forward("https://…/webhooks/mailgun")``): an inbound email as form fields
(``sender``, ``from``, ``recipient``, ``subject``, ``body-plain``, ``message-headers``...), url-encoded,
or multipart when it has attachments; with a route URL ending in ``mime``, whole in ``body-mime``.

Mailgun signs ``timestamp + token`` (hex HMAC-SHA256 with the webhook signing key). The token is one
time: the handler refuses it with any other message (``Parsed.replay_tokens``). Answers: 200 done;
406 tells Mailgun to drop the message without retrying, used for signed content that can never be
processed (no sender, broken MIME); anything else is retried for 8 hours."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

import orjson
from aiohttp import web

from omnirouter_gateway.inbound import email_mime as mime
from omnirouter_gateway.inbound.base import (
    BadSignature,
    Malformed,
    MissingSignature,
    NotConfigured,
    Parsed,
    RawRequest,
    ReplayToken,
    StaleTimestamp,
    WebhookError,
)
from omnirouter_shared.contracts.common import Attachment, Vendor

CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_SIGNATURE_FIELDS = frozenset({"timestamp", "token", "signature"})
_BODY_FIELDS = (
    frozenset({"body-plain", "body-html", "stripped-html", "body-mime", "message-headers", "content-id-map"})
    | _SIGNATURE_FIELDS
)


class Unprocessable(WebhookError):
    """Signed by Mailgun but impossible to process, now or on retry: 406 = do not retry."""

    status, error = 406, "unprocessable"


class MailgunRoute:
    name = "mailgun_inbound"
    vendor = Vendor.MAILGUN
    content_types = CONTENT_TYPES

    def __init__(self, signing_key: str | None, max_body: int, tolerance_s: float) -> None:
        self._key = signing_key.encode() if signing_key else None
        self.max_body = max_body
        self._tolerance_s = tolerance_s

    def configured(self) -> bool:
        return self._key is not None

    def verify(self, request: RawRequest, now: float) -> None:
        if self._key is None:
            raise NotConfigured("MAILGUN_SIGNING_KEY is not set")
        fields = _fields(request)
        timestamp, token, signature = (fields.get(n, "") for n in ("timestamp", "token", "signature"))
        if not (timestamp and token and signature):
            raise MissingSignature("timestamp, token and signature fields are required")
        if len(token) > 256 or len(signature) > 128:
            raise BadSignature("token or signature is too long")
        try:
            when = int(timestamp)
        except ValueError as exc:
            raise BadSignature("timestamp is not a number") from exc
        if abs(now - when) > self._tolerance_s:
            raise StaleTimestamp("timestamp is outside the accepted window")
        expected = hmac.new(self._key, (timestamp + token).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
            raise BadSignature("signature does not match timestamp and token")

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        try:
            return self._parse(request, received_at)
        except Malformed as exc:
            raise Unprocessable(exc.reason) from exc

    def _parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        parts = _parts(request)
        fields: dict[str, str] = {}
        for part in parts:
            if part.filename is None:
                fields.setdefault(part.name, part.text())
        kept = mime.small_fields(list(fields.items()), _BODY_FIELDS)
        recipient = mime.parse_address_text(fields.get("recipient"))
        if fields.get("body-mime"):
            mail = mime.parse_email(fields["body-mime"].encode("utf-8", "surrogateescape"))
        else:
            mail = self._from_fields(fields, parts)
        event = mime.email_event(Vendor.MAILGUN, mail, received_at, kept, recipient)
        token = fields.get("token", "")
        return Parsed(events=[event], replay_tokens=[ReplayToken(token=token, message=event.dedup_key)])

    @staticmethod
    def _from_fields(fields: dict[str, str], parts: list[mime.FormPart]) -> mime.ParsedEmail:
        headers = mime.parse_header_block(_header_block(fields.get("message-headers")))
        ids = mime.message_ids(fields.get("Message-Id") or mime.header_text(headers, "Message-Id"))
        content = "\0".join(fields.get(n, "") for n in ("message-headers", "from", "subject", "body-plain"))
        message_id = ids[0] if ids else mime.fallback_id(content.encode("utf-8", "replace"))
        sender = mime.parse_address_text(fields.get("from")) or mime.parse_address_text(fields.get("sender"))
        if sender is None:
            raise Malformed("Mailgun email without a usable sender")
        to_found = mime.first_address(headers, "To")
        plain = fields.get("body-plain")
        html = fields.get("body-html")
        text = mime.tidy(plain) if plain and plain.strip() else (mime.html_to_text(html) if html else None)
        subject = fields.get("subject") or mime.header_text(headers, "Subject")
        files = [p for p in parts if p.filename is not None]
        attachments: list[Attachment] = [
            mime.attachment_ref(message_id, i, p.filename, p.content_type, len(p.data))
            for i, p in enumerate(files[:100])
        ]
        thread = mime.thread_of(headers, message_id)
        if not thread.in_reply_to and fields.get("In-Reply-To"):
            replied = mime.message_ids(fields["In-Reply-To"])
            thread = thread.model_copy(update={"in_reply_to": replied[0] if replied else None})
        if not thread.references and fields.get("References"):
            thread = thread.model_copy(update={"references": mime.message_ids(fields["References"])[:100]})
        return mime.ParsedEmail(
            sender=sender,
            recipient=mime.email_address(to_found) if to_found is not None else None,
            subject=subject[:1000] if subject else None,
            message_id=message_id,
            thread=thread,
            text=text or None,
            attachments=tuple(attachments),
            sent_at=mime.sent_at(headers),
        )

    def success(self, parsed: Parsed) -> web.Response:
        return web.json_response({"status": "accepted"})


def _parts(request: RawRequest) -> list[mime.FormPart]:
    if request.content_type == "multipart/form-data":
        return mime.form_data(request.body, request.headers.get("Content-Type", ""))
    return [mime.FormPart(name=k, data=v.encode()) for k, v in request.form_pairs()]


def _fields(request: RawRequest) -> dict[str, str]:
    """The signature fields only (cheap for url-encoded bodies; multipart bodies are split once more
    in ``parse``, which keeps ``verify`` free of state)."""
    out: dict[str, str] = {}
    for part in _parts(request):
        if part.name in _SIGNATURE_FIELDS and part.filename is None:
            out.setdefault(part.name, part.text().strip())
    return out


def _header_block(message_headers: str | None) -> str:
    """``[["Name", "value"], ...]`` (Mailgun's ``message-headers``) -> header lines."""
    if not message_headers:
        return ""
    try:
        pairs = orjson.loads(message_headers)
    except orjson.JSONDecodeError as exc:
        raise Malformed("message-headers is not JSON") from exc
    if not isinstance(pairs, list):
        raise Malformed("message-headers is not a list")
    lines = []
    for pair in pairs[:500]:
        if (
            isinstance(pair, list)
            and len(pair) == 2
            and all(isinstance(x, str) for x in pair)
            and pair[0].strip()
            and ":" not in pair[0]
        ):
            name = "".join(c for c in pair[0] if c.isprintable() and not c.isspace())
            value = pair[1].replace("\r", " ").replace("\n", " ")
            if name:
                lines.append(f"{name}: {value}")
    return "\n".join(lines)
