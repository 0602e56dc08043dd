"""The pure core: presence states, status rules, the client protocol, tokens and webhook signing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from standardwebhooks import Webhook

from omnirouter_presence.domain.frames import decision_for
from omnirouter_presence.domain.presence import (
    InvalidStatus,
    PresenceState,
    derive_state,
    free_capacity,
    validate_status,
)
from omnirouter_presence.domain.protocol import CLIENT_COMMANDS, AcceptCommand, ReplyCommand, TransferCommand
from omnirouter_presence.domain.roster import (
    AgentCreate,
    AgentFields,
    AgentRecord,
    hash_token,
    new_token,
    new_webhook_secret,
    token_matches,
)
from omnirouter_presence.domain.webhooks import retry_delay_s, sign, signed_headers
from omnirouter_shared.contracts.agents import AgentKind, AgentStatus
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.routing import OfferRescinded, TaskClosed, TaskQueued
from tests.presence.harness import offered, task_view

REASONS = ("break", "lunch")


def test_busy_follows_from_load_and_capacity() -> None:
    cap = {"sms": 2, "voice": 1}
    assert derive_state(AgentStatus.AVAILABLE, cap, {}, 0) is PresenceState.AVAILABLE
    assert derive_state(AgentStatus.AVAILABLE, cap, {"sms": 2}, 0) is PresenceState.AVAILABLE  # voice free
    assert derive_state(AgentStatus.AVAILABLE, cap, {"sms": 2, "voice": 1}, 0) is PresenceState.BUSY
    assert derive_state(AgentStatus.AVAILABLE, {}, {}, 0) is PresenceState.BUSY  # no capacity at all
    assert derive_state(AgentStatus.AVAILABLE, cap, {}, 1) is PresenceState.WRAPUP
    assert derive_state(AgentStatus.AWAY, cap, {"sms": 2, "voice": 1}, 0) is PresenceState.AWAY
    assert derive_state(AgentStatus.OFFLINE, cap, {}, 1) is PresenceState.OFFLINE
    assert free_capacity(cap, {"sms": 3}) == {"sms": 0, "voice": 1}


@given(
    status=st.sampled_from(list(AgentStatus)),
    cap=st.dictionaries(st.sampled_from(["sms", "voice", "email"]), st.integers(0, 5)),
    load=st.dictionaries(st.sampled_from(["sms", "voice", "email"]), st.integers(0, 6)),
    wrapups=st.integers(0, 3),
)
def test_a_chosen_non_available_status_always_wins(
    status: AgentStatus, cap: dict[str, int], load: dict[str, int], wrapups: int
) -> None:
    state = derive_state(status, cap, load, wrapups)
    if status is not AgentStatus.AVAILABLE:
        assert state.value == status.value
    else:
        assert state is not PresenceState.OFFLINE
        assert (state is PresenceState.BUSY) == (
            wrapups == 0 and all(v == 0 for v in free_capacity(cap, load).values())
        )


def test_away_needs_a_known_reason_code() -> None:
    assert validate_status("away", None, REASONS) == (AgentStatus.AWAY, "break")
    assert validate_status("away", "lunch", REASONS) == (AgentStatus.AWAY, "lunch")
    with pytest.raises(InvalidStatus) as bad_reason:
        validate_status("away", "nap", REASONS)
    assert bad_reason.value.code == "invalid_reason"
    with pytest.raises(InvalidStatus) as busy:
        validate_status("busy", None, REASONS)  # busy is derived, never chosen
    assert busy.value.code == "invalid_status"
    assert validate_status("available", None, REASONS) == (AgentStatus.AVAILABLE, None)


def test_client_frames_parse_by_type_and_reject_nonsense() -> None:
    assert isinstance(CLIENT_COMMANDS.validate_python({"type": "accept", "task_id": "t1"}), AcceptCommand)
    reply = CLIENT_COMMANDS.validate_python({"type": "reply", "task_id": "t", "text": "hi", "ref": "r"})
    assert isinstance(reply, ReplyCommand) and reply.ref == "r"
    for bad in (
        {"type": "accept"},  # neither offer nor task
        {"type": "transfer", "task_id": "t"},  # no target
        {"type": "transfer", "task_id": "t", "to_queue": "q", "to_agent_id": "a"},
        {"type": "reply", "task_id": "t", "text": ""},
        {"type": "launch_missiles"},
    ):
        with pytest.raises(ValidationError):
            CLIENT_COMMANDS.validate_python(bad)
    assert isinstance(
        CLIENT_COMMANDS.validate_python({"type": "transfer", "task_id": "t", "to_agent_id": "bob"}),
        TransferCommand,
    )


def test_tokens_are_random_and_only_their_hash_matches() -> None:
    token = new_token()
    assert len(token) >= 43 and token != new_token()
    stored = hash_token(token)
    assert token_matches(token, stored)
    assert not token_matches(token + "x", stored)
    assert token.encode() not in stored


def test_roster_update_changes_only_what_it_sets() -> None:
    created = AgentCreate.model_validate({"id": "alice", "name": "Alice", "capacity": {"sms": 2}})
    record = AgentRecord(
        id=created.id,
        name=created.name,
        kind=AgentKind.HUMAN,
        skills={"billing": 3},
        capacity={"sms": 2},
        teams=("blue",),
        routing_domain="default",
        enabled=True,
        webhook_url="https://crm.example/hook",
    )
    updated = record.apply(AgentFields.model_validate({"capacity": {"voice": 1}, "webhook_url": ""}))
    assert (
        updated.capacity == {"voice": 1} and updated.skills == {"billing": 3} and updated.teams == ("blue",)
    )
    assert updated.webhook_url is None
    assert updated.upserted().capacity == {Channel.VOICE: 1}
    with pytest.raises(ValidationError):
        AgentCreate.model_validate({"id": "bad id", "name": "x"})
    with pytest.raises(ValidationError):
        AgentFields.model_validate({"skills": {"billing": 11}})


def test_signatures_verify_with_the_standard_webhooks_library() -> None:
    secret = new_webhook_secret()
    body = b'{"type":"offer","offer_id":"o1"}'
    msg_id = str(uuid.uuid4())
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers(secret, msg_id, now, body)
    assert Webhook(secret).verify(body, headers) == {"type": "offer", "offer_id": "o1"}
    assert sign(secret, msg_id, now, body) != sign(secret, msg_id, now + 1, body)


def test_retry_delays_grow_exponentially_up_to_the_cap() -> None:
    delays = [retry_delay_s(n, 2.0, 60.0, 0.0) for n in range(1, 8)]
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert retry_delay_s(3, 2.0, 60.0, 0.999) <= 8.0 * 1.25


def test_decisions_become_desktop_frames() -> None:
    offer = offered("alice", task_view())
    decision = decision_for(offer)
    assert decision is not None and decision.agent_id == "alice"
    assert decision.frame["type"] == "offer" and decision.frame["task"]["id"] == offer.task.id
    rescind = decision_for(OfferRescinded(offer_id="o", task_id="t", agent_id="alice", reason="timeout"))
    assert rescind is not None and rescind.frame == {
        "type": "rescind",
        "offer_id": "o",
        "task_id": "t",
        "reason": "timeout",
    }
    queued = TaskQueued(
        task_id="t",
        conversation_id="c",
        customer_id="k",
        queue="q",
        priority=1,
        channel=Channel.SMS,
        reason="new",
    )
    assert decision_for(queued) is None  # nothing for a desktop
    assert (
        decision_for(TaskClosed(task_id="t", conversation_id="c", customer_id="k", reason="abandoned"))
        is None
    )
