from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from omnirouter_shared.contracts import (
    EVENT_TYPES,
    decode_envelope,
    encode_envelope,
    new_envelope,
    parse_payload,
)
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.envelope import MalformedEnvelope
from omnirouter_shared.contracts.interactions import InteractionReceived, interaction_id_for
from omnirouter_shared.contracts.registry import InvalidPayload, UnknownEventType
from omnirouter_shared.topics import TOPICS, Topic


def _received(text: str = "hello") -> InteractionReceived:
    return InteractionReceived(
        interaction_id=interaction_id_for(Vendor.TWILIO, "SM1"),
        channel=Channel.SMS,
        vendor=Vendor.TWILIO,
        vendor_message_id="SM1",
        sender=Address(kind=AddressKind.PHONE, value="+14155550100"),
        recipient=Address(kind=AddressKind.PHONE, value="+18005550199"),
        text=text,
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
        vendor_fields={"NumSegments": "1", "SomethingNew": {"nested": True}},
    )


def test_envelope_round_trip_keeps_payload_and_metadata() -> None:
    env = new_envelope(_received(), producer="channel-gateway", routing_domain="emea", correlation_id="c-1")
    decoded = decode_envelope(encode_envelope(env))
    assert decoded == env
    payload = parse_payload(decoded)
    assert payload == _received()
    assert decoded.type == "interaction.received" and decoded.schema_version == 1
    assert decoded.routing_domain == "emea" and decoded.correlation_id == "c-1"


def test_interaction_id_is_deterministic_per_vendor_message() -> None:
    assert interaction_id_for("twilio", "SM1") == interaction_id_for(Vendor.TWILIO, "SM1")
    assert interaction_id_for("twilio", "SM1") != interaction_id_for("meta", "SM1")


@pytest.mark.parametrize("raw", [None, b"", b"not json", b"[1,2]", b'{"event_id": "x"}'])
def test_malformed_envelopes_are_refused_with_a_reason(raw: bytes | None) -> None:
    with pytest.raises(MalformedEnvelope):
        decode_envelope(raw)


def test_unknown_type_and_invalid_payload_are_distinguished() -> None:
    env = new_envelope(_received(), producer="x")
    with pytest.raises(UnknownEventType):
        parse_payload(env.model_copy(update={"type": "nope"}))
    with pytest.raises(InvalidPayload, match="sender"):
        parse_payload(env.model_copy(update={"payload": {**env.payload, "sender": 3}}))


def test_newer_producers_may_add_fields() -> None:
    env = new_envelope(_received(), producer="x")
    data = env.model_dump(mode="json")
    data["brand_new"] = 1
    data["payload"]["also_new"] = {"a": 1}
    import orjson

    decoded = decode_envelope(orjson.dumps(data))
    assert parse_payload(decoded) == _received()


def test_every_event_a_topic_names_is_registered() -> None:
    known = {t for t, _ in EVENT_TYPES}
    for spec in TOPICS.values():
        if spec.topic in (Topic.DEAD_LETTER, Topic.ROUTING_SNAPSHOTS):
            continue
        assert set(spec.events) <= known, spec.topic


@given(st.binary(max_size=300))
def test_decoding_never_crashes_on_arbitrary_bytes(raw: bytes) -> None:
    with contextlib.suppress(MalformedEnvelope, UnknownEventType, InvalidPayload):
        parse_payload(decode_envelope(raw))
