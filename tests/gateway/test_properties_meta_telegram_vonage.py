"""Whatever arrives on the Meta, Telegram and Vonage endpoints, the pure adapters either return events
or refuse with a 4xx WebhookError: never another exception (which would be a 500, and a vendor retry
loop). Bodies are signed correctly where that lets the input reach the parser."""

from __future__ import annotations

import hashlib
import hmac
import json
import warnings
from datetime import UTC, datetime
from typing import Any

import jwt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from omnirouter_gateway.inbound.base import RawRequest, WebhookAdapter, WebhookError
from omnirouter_gateway.inbound.meta import Meta
from omnirouter_gateway.inbound.telegram import Telegram
from omnirouter_gateway.inbound.vonage import Vonage

SECRET = "property-secret-0123456789abcdef0123456789"
NOW = 1_750_000_000.0
RECEIVED = datetime(2025, 6, 15, tzinfo=UTC)

META = Meta(SECRET, 1 << 20)
TELEGRAM = Telegram(SECRET, "123456:AAH-not-real", 1 << 20)
VONAGE = Vonage(SECRET, 300, 1 << 20)

#: Keys the parsers look for, so generated objects reach their branches, not only the first check.
KEYS = [
    "object", "entry", "id", "changes", "value", "field", "messages", "statuses", "contacts", "metadata",
    "display_phone_number", "phone_number_id", "wa_id", "profile", "name", "from", "to", "type", "text",
    "body", "timestamp", "status", "recipient_id", "errors", "code", "title", "image", "audio", "video",
    "document", "sticker", "location", "latitude", "longitude", "interactive", "button_reply", "button",
    "reaction", "emoji", "message_id", "context", "mime_type", "filename", "caption", "messaging",
    "sender", "recipient", "message", "mid", "is_echo", "attachments", "payload", "url", "postback",
    "delivery", "mids", "read", "update_id", "edited_message", "channel_post", "callback_query", "chat",
    "date", "edit_date", "photo", "file_id", "file_size", "voice", "data", "first_name", "contact",
    "phone_number", "new_chat_members", "message_uuid", "channel", "message_type", "reply", "lat", "long",
    "number", "error", "detail", "file_name", "reply_to_message", "sender_chat",
]  # fmt: skip
CHOICES = [
    "whatsapp_business_account", "page", "instagram", "text", "image", "document", "location",
    "interactive", "button_reply", "reaction", "contacts", "delivered", "read", "failed", "sent", "sms",
    "mms", "whatsapp", "messenger", "viber_service", "submitted", "rejected", "button", "reply",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(CHOICES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)
json_objects = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8)


def _request(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest(
        method="POST",
        url="https://gateway.example.com/webhooks/x",
        path="/webhooks/x",
        query={},
        headers=CIMultiDictProxy(CIMultiDict(headers)),
        body=body,
        content_type="application/json",
    )


def _meta_headers(body: bytes) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()}


def _telegram_headers(_: bytes) -> dict[str, str]:
    return {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def _vonage_headers(body: bytes) -> dict[str, str]:
    claims = {"iat": int(NOW), "jti": "j", "payload_hash": hashlib.sha256(body).hexdigest()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return {"Authorization": "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")}


SIGNED = [(META, _meta_headers), (TELEGRAM, _telegram_headers), (VONAGE, _vonage_headers)]


def _run(adapter: WebhookAdapter, request: RawRequest) -> None:
    try:
        adapter.verify(request, NOW)
        parsed = adapter.parse(request, RECEIVED)
    except WebhookError as exc:
        assert exc.status < 500, (type(exc).__name__, exc.reason)
        assert SECRET not in exc.reason
        return
    keys = [e.dedup_key for e in parsed.events]
    assert len(keys) == len(set(keys)), keys
    for event in parsed.events:
        # What intake will publish must serialise and be keyed.
        event.payload.model_dump_json()
        assert event.kafka_key and event.event_id
    assert adapter.success(parsed).status == 200


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SIGNED), json_objects)
def test_signed_json_objects_parse_or_refuse_with_4xx(signed: Any, payload: dict[str, Any]) -> None:
    adapter, headers = signed
    body = json.dumps(payload).encode()
    _run(adapter, _request(body, headers(body)))


def _or(valid: Any) -> st.SearchStrategy[Any]:
    """Half the time a value the parser accepts, so generated batches get past the first check."""
    return st.one_of(st.just(valid), json_values)


def _meta_shaped() -> st.SearchStrategy[dict[str, Any]]:
    message = st.fixed_dictionaries(
        {"from": _or("16315551234"), "id": _or("wamid.X") | st.text(min_size=1, max_size=12)},
        optional={k: json_values for k in ("text", "image", "context", "location", "interactive", "reaction")}
        | {"type": st.sampled_from(CHOICES), "timestamp": _or("1749416383")},
    )
    status = st.fixed_dictionaries(
        {"id": _or("wamid.S"), "status": st.sampled_from(CHOICES), "recipient_id": _or("5511987654321")},
        optional={"errors": json_values, "timestamp": json_values},
    )
    value = st.fixed_dictionaries(
        {
            "metadata": st.fixed_dictionaries(
                {"display_phone_number": _or("+1 555 0100"), "phone_number_id": _or("1065")}
            )
        },
        optional={"messages": st.lists(message, max_size=3), "statuses": st.lists(status, max_size=3)}
        | {"contacts": json_values},
    )
    page_message = st.fixed_dictionaries(
        {"mid": _or("m_1")},
        optional={
            "text": json_values,
            "attachments": json_values,
            "is_echo": json_values,
            "reply_to": json_values,
        },
    )
    messaging = st.fixed_dictionaries(
        {"sender": st.fixed_dictionaries({"id": _or("2417")}), "recipient": _or({"id": "1234"})},
        optional={
            "message": page_message,
            "postback": json_objects,
            "delivery": st.fixed_dictionaries({"mids": _or(["m_2", "m_2"])}),
            "read": json_values,
            "timestamp": json_values,
        },
    )
    entry = st.fixed_dictionaries(
        {"id": _or("1234")},
        optional={
            "changes": st.lists(st.fixed_dictionaries({"value": value}), max_size=3),
            "messaging": st.lists(messaging, max_size=3),
        },
    )
    return st.fixed_dictionaries(
        {
            "object": st.sampled_from(["whatsapp_business_account", "page", "instagram"]),
            "entry": st.lists(entry, max_size=3),
        }
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_meta_shaped())
def test_meta_shaped_batches_parse_or_refuse_with_4xx(payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    _run(META, _request(body, _meta_headers(body)))


_telegram_message = st.fixed_dictionaries(
    {"message_id": _or(5), "chat": _or({"id": -100123}), "from": _or({"id": 42, "first_name": "Ann"})},
    optional={
        k: json_values
        for k in ("text", "caption", "photo", "document", "voice", "location", "contact", "edit_date", "date")
    }
    | {"new_chat_members": _or([{"id": 1}]), "data": json_values, "id": _or("cb-1"), "message": json_objects},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _or(9001),
    st.sampled_from(["message", "edited_message", "channel_post", "callback_query", "poll"]),
    _telegram_message,
)
def test_telegram_shaped_updates_parse_or_refuse_with_4xx(
    update_id: Any, kind: str, message: dict[str, Any]
) -> None:
    body = json.dumps({"update_id": update_id, kind: message}).encode()
    _run(TELEGRAM, _request(body, _telegram_headers(body)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(CHOICES),
    st.one_of(st.none(), st.sampled_from(["delivered", "rejected", "read", "x"])),
    json_objects,
)
def test_vonage_shaped_callbacks_parse_or_refuse_with_4xx(
    channel: str, status: str | None, extra: dict[str, Any]
) -> None:
    payload: dict[str, Any] = {
        "message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab",
        "channel": channel,
        "from": "447700900001",
        "to": "447700900000",
        **extra,
    }
    if status is not None:
        payload["status"] = status
    body = json.dumps(payload).encode()
    _run(VONAGE, _request(body, _vonage_headers(body)))


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([META, TELEGRAM, VONAGE]),
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(["X-Hub-Signature-256", "X-Telegram-Bot-Api-Secret-Token", "Authorization"]),
        st.text(max_size=80) | st.sampled_from(["sha256=", "Bearer ", "Bearer a.b.c", SECRET]),
        max_size=3,
    ),
)
def test_arbitrary_bytes_and_headers_never_raise_anything_else(
    adapter: WebhookAdapter, body: bytes, headers: dict[str, str]
) -> None:
    _run(adapter, _request(body, headers))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SIGNED), st.binary(max_size=300))
def test_signed_arbitrary_bytes_parse_or_refuse_with_4xx(signed: Any, body: bytes) -> None:
    adapter, headers = signed
    _run(adapter, _request(body, headers(body)))
