"""What every vendor adapter works on and returns. Adapters are pure: bytes in, events out, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qsl

from aiohttp import web
from multidict import CIMultiDictProxy

from omnirouter_shared.contracts.common import Vendor
from omnirouter_shared.contracts.interactions import InteractionReceived, InteractionStatusChanged


class WebhookError(Exception):
    """A refusal with its HTTP status; ``reason`` is shown to the caller and must not hold secrets."""

    status = 400
    error = "malformed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Malformed(WebhookError):
    status, error = 400, "malformed"


class MissingSignature(WebhookError):
    status, error = 401, "missing_signature"


class BadSignature(WebhookError):
    status, error = 403, "bad_signature"


class StaleTimestamp(WebhookError):
    status, error = 403, "stale_timestamp"


class Replayed(WebhookError):
    status, error = 403, "replayed"


class UnsupportedMediaType(WebhookError):
    status, error = 415, "unsupported_media_type"


class NotConfigured(WebhookError):
    """The vendor's secret is not set: refuse (5xx, so the vendor retries once it is), never accept."""

    status, error = 503, "vendor_not_configured"


@dataclass(frozen=True)
class RawRequest:
    """A webhook as the vendor sent it. ``url`` is the URL the vendor called: the configured public
    base URL plus the path and query, never the Host header."""

    method: str
    url: str
    path: str
    query: Mapping[str, str]
    headers: CIMultiDictProxy[str]
    body: bytes
    content_type: str
    remote: str | None = None

    def form_pairs(self) -> list[tuple[str, str]]:
        """``application/x-www-form-urlencoded`` body as ordered pairs (repeated names kept)."""
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Malformed("form body is not UTF-8") from exc
        try:
            return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=2000)
        except ValueError as exc:
            raise Malformed(f"form body is not url-encoded: {exc}") from exc

    def form(self) -> dict[str, str]:
        """First value per name (vendors never repeat the fields we read)."""
        out: dict[str, str] = {}
        for k, v in self.form_pairs():
            out.setdefault(k, v)
        return out


Payload = InteractionReceived | InteractionStatusChanged


@dataclass(frozen=True)
class InboundEvent:
    """One event to publish. ``dedup_key`` is unique per vendor message (or status step), so a
    redelivery of the same vendor message is recognised however late it arrives."""

    dedup_key: str
    event_id: str
    kafka_key: str
    payload: Payload


@dataclass(frozen=True)
class ReplayToken:
    """A one-time value the vendor signed (Mailgun's ``token``), bound to the message it came with:
    the same message redelivered may carry it again, another message may not."""

    token: str
    message: str


@dataclass
class Parsed:
    events: list[InboundEvent] = field(default_factory=list)
    #: Updates the vendor sent that are not contacts (echoes of our own sends, typing indicators...).
    ignored: int = 0
    #: Vendor-specific data the success answer needs (e.g. Twilio's TwiML).
    answer: web.Response | None = None
    #: Checked by the handler against ``replay_guard`` before intake (the adapter itself does no I/O).
    replay_tokens: list[ReplayToken] = field(default_factory=list)


class WebhookAdapter(Protocol):
    """One vendor endpoint. ``verify`` runs before ``parse`` and sees the same raw request."""

    vendor: Vendor
    #: Metrics label and log name, e.g. ``twilio_messaging``.
    name: str
    #: Accepted media types (lower case, without parameters).
    content_types: frozenset[str]
    max_body: int

    def configured(self) -> bool: ...

    def verify(self, request: RawRequest, now: float) -> None: ...

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed: ...

    def success(self, parsed: Parsed) -> web.Response: ...
