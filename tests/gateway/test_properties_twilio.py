"""Whatever a correctly signed Twilio request carries, the pure Twilio adapters either return events or
refuse with a 4xx WebhookError, never another exception (a 500 sends Twilio to its fallback URL)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from omnirouter_gateway.inbound.base import RawRequest, WebhookAdapter, WebhookError
from omnirouter_gateway.inbound.twilio import TwilioMessaging, TwilioVoice, TwilioVoiceStatus
from omnirouter_gateway.inbound.twilio_signature import compute_signature

TOKEN = "property-twilio-token"
URL = "https://omnirouter.example.com/webhooks/twilio/messaging"
RECEIVED = datetime(2025, 6, 15, tzinfo=UTC)

ADAPTERS: list[WebhookAdapter] = [
    TwilioMessaging(TOKEN, None, 1 << 20),
    TwilioVoice(TOKEN, None, 1 << 20, "omnirouter", "Hello"),
    TwilioVoiceStatus(TOKEN, None, 1 << 20),
]

FIELDS = [
    "MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
    "MediaContentType0", "ProfileName", "WaId", "MessageStatus", "ErrorCode", "CallSid", "CallStatus",
    "SequenceNumber", "CallerName",
]  # fmt: skip
VALUES = [
    "+14155550100", "whatsapp:+447700900123", "whatsapp:", "messenger:123", "0", "1", "25", "-3", "x",
    "delivered", "ringing", "in-progress", "completed", "busy", "undelivered", "", " ", "SM1", "CA1",
    "+1" * 300, "whatsapp:" + "9" * 600,
]  # fmt: skip

field_value = st.sampled_from(VALUES) | st.text(max_size=40)
#: Mostly complete requests (so the parsers' branches are reached), with random extras and gaps.
REQUIRED = ("From", "To", "CallStatus")
base = st.fixed_dictionaries(
    {name: field_value for name in REQUIRED},
    optional={name: field_value for name in FIELDS if name not in REQUIRED},
)
extras = st.lists(st.tuples(st.text(max_size=12), field_value), max_size=4)
forms = st.builds(lambda fields, more: [*fields.items(), *more], base, extras)


def _request(pairs: list[tuple[str, str]], signature: str | None) -> RawRequest:
    headers: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/x-www-form-urlencoded"})
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    return RawRequest(
        method="POST",
        url=URL,
        path="/webhooks/twilio/messaging",
        query={},
        headers=CIMultiDictProxy(headers),
        body=urlencode(pairs).encode(),
        content_type="application/x-www-form-urlencoded",
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=forms, which=st.integers(min_value=0, max_value=len(ADAPTERS) - 1))
def test_signed_forms_give_events_or_a_4xx(pairs: list[tuple[str, str]], which: int) -> None:
    adapter = ADAPTERS[which]
    raw = _request(pairs, compute_signature(TOKEN, URL, pairs))
    try:
        adapter.verify(raw, 0.0)
        parsed = adapter.parse(raw, RECEIVED)
    except WebhookError as exc:
        assert 400 <= exc.status < 500, exc
        return
    for event in parsed.events:
        assert event.dedup_key and event.event_id and event.kafka_key
        event.payload.model_dump_json()


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), signature=st.none() | st.text(max_size=40))
def test_arbitrary_bytes_are_refused_with_a_4xx(body: bytes, signature: str | None) -> None:
    headers: CIMultiDict[str] = CIMultiDict()
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    raw = RawRequest(
        "POST", URL, "/x", {}, CIMultiDictProxy(headers), body, "application/x-www-form-urlencoded"
    )
    for adapter in ADAPTERS:
        try:
            adapter.verify(raw, 0.0)
            adapter.parse(raw, RECEIVED)
        except WebhookError as exc:
            assert 400 <= exc.status < 500, exc
