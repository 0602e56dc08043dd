"""Intake handlers through PostgreSQL (the Kafka adapter around them is covered by test_service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from omnirouter_identity.consent_keywords import detect
from omnirouter_identity.intake import Effects, handle_received, handle_status
from omnirouter_identity.resolution import Resolver
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.contracts.interactions import (
    InteractionKind,
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
)

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("channel", "text", "expected"),
    [
        (Channel.SMS, " stop ", (True, Channel.SMS)),
        (Channel.MMS, "Unsubscribe.", (True, Channel.SMS)),
        (Channel.WHATSAPP, "QUIT", (True, Channel.WHATSAPP)),
        (Channel.SMS, "STOPALL", (True, None)),
        (Channel.SMS, "start", (False, Channel.SMS)),
        (Channel.WHATSAPP, "UNSTOP", (False, Channel.WHATSAPP)),
        (Channel.SMS, "please stop calling me", None),
        (Channel.EMAIL, "STOP", None),
    ],
)
def test_consent_keywords(channel: Channel, text: str, expected: tuple[bool, Channel | None] | None) -> None:
    found = detect(channel, text)
    assert (None if found is None else (found.opted_out, found.channel)) == expected


async def test_a_withheld_callers_status_reaches_the_profile_its_call_got(
    pool: asyncpg.Pool, resolver: Resolver
) -> None:
    caller = Address(kind=AddressKind.PHONE, value="anonymous")
    call = InteractionReceived(
        interaction_id="call-1",
        kind=InteractionKind.CALL,
        channel=Channel.VOICE,
        vendor=Vendor.TWILIO,
        vendor_message_id="CA1",
        sender=caller,
        recipient=Address(kind=AddressKind.PHONE, value="+18005550199"),
        received_at=T0,
    )
    ended = InteractionStatusChanged(
        interaction_id="call-1",
        channel=Channel.VOICE,
        vendor=Vendor.TWILIO,
        vendor_message_id="CA1",
        customer_address=caller,
        status=InteractionStatus.ABANDONED,
        occurred_at=T0 + timedelta(seconds=40),
    )
    fx = Effects()

    async def work(conn: asyncpg.Connection) -> None:
        await handle_received(conn, resolver, call, new_envelope(call, producer="t", event_id="call-1"), fx)
        await handle_status(conn, resolver, ended, new_envelope(ended, producer="t", event_id="st-1"), fx)

    await serializable(pool, work)
    resolved, status = (e.envelope.payload for e in fx.events if e.envelope is not None)
    assert status["customer_id"] == resolved["customer"]["customer_id"]
    assert await pool.fetchval("SELECT count(*) FROM profiles") == 1
    kinds = [r["entry_id"] for r in await pool.fetch("SELECT entry_id FROM timeline ORDER BY occurred_at")]
    assert kinds == ["interaction:call-1", "status:call-1:abandoned"]
