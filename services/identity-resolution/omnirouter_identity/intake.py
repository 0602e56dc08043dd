"""What identity-resolution does with each event it consumes, inside one transaction per batch.

Each ``handle_*`` function records effects with the connection it is given and returns the events to
publish; :class:`Intake` claims the batch's event ids in the same transaction, stages the events in the
outbox, and publishes them once the transaction committed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from omnirouter_identity import consent_keywords, events
from omnirouter_identity.core.normalise import claims_for
from omnirouter_identity.resolution import Outcome, Resolver
from omnirouter_identity.store import profiles, timeline
from omnirouter_identity.store.graph import Observation
from omnirouter_identity.store.outbox import OutboxEvent
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.envelope import Envelope
from omnirouter_shared.contracts.identity import CustomerSummary
from omnirouter_shared.contracts.interactions import (
    InteractionKind,
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
)
from omnirouter_shared.contracts.replies import ReplyDeliveryStatus, ReplyPurpose, ReplyRequested
from omnirouter_shared.contracts.routing import TaskAssigned, TaskClosed, TaskOffered

HISTORY_ITEMS = 5
_TERMINAL = frozenset({InteractionStatus.COMPLETED, InteractionStatus.ABANDONED, InteractionStatus.FAILED})


@dataclass
class Effects:
    events: list[OutboxEvent] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


async def handle_received(
    conn: asyncpg.Connection, resolver: Resolver, msg: InteractionReceived, env: Envelope, fx: Effects
) -> None:
    obs = Observation(
        source=f"{msg.vendor.value}:{msg.channel.value}",
        observed_at=msg.received_at,
        interaction_id=msg.interaction_id,
    )
    outcome = await resolver.resolve(
        conn, [msg.sender, *msg.claimed_identifiers], obs, source_id=env.event_id
    )
    fx.outcomes.append(outcome)
    if outcome.profile_id is None:
        return  # a replay of an erased customer's contact: nothing may be recorded or routed
    pid = outcome.profile_id
    for merge in outcome.merges:
        fx.events += events.merged(
            merge, domains=[env.routing_domain], correlation_id=env.correlation_id, causation_id=env.event_id
        )
    entry_id = f"interaction:{msg.interaction_id}"
    entry = timeline.NewEntry(
        entry_id=entry_id,
        profile_id=pid,
        direction="inbound",
        kind="call" if msg.kind is InteractionKind.CALL else "message",
        summary=timeline.summarise(msg.subject, msg.text) or f"{msg.channel.value} {msg.kind.value}",
        source=f"{msg.vendor.value}",
        occurred_at=msg.received_at,
        channel=msg.channel,
        identifier_id=_sender_identifier(resolver, msg, outcome),
        routing_domain=env.routing_domain,
        interaction_id=msg.interaction_id,
    )
    keyword = consent_keywords.detect(msg.channel, msg.text)
    if keyword is not None:
        changed = await profiles.set_consent(
            conn,
            profile_id=pid,
            address_key=msg.sender.key,
            channel=keyword.channel,
            opted_out=keyword.opted_out,
            reason=keyword.reason,
            at=msg.received_at,
        )
        if changed:
            fx.events.append(
                events.consent_changed(
                    customer_id=pid,
                    address=msg.sender,
                    channel=keyword.channel,
                    opted_out=keyword.opted_out,
                    reason=keyword.reason,
                    at=msg.received_at,
                    source_id=msg.interaction_id,
                    correlation_id=env.correlation_id,
                )
            )
    # The interaction's own timeline entry is written by the statement that reads the history (which
    # excludes it): one round trip fewer per contact. Nothing in between reads the timeline.
    ctx = await timeline.context(
        conn,
        pid,
        display_name=msg.sender.display_name,
        exclude_entry=entry_id,
        limit=HISTORY_ITEMS,
        record_first=entry,
    )
    customer = CustomerSummary(
        customer_id=pid,
        display_name=ctx.display_name,
        preferred_channel=ctx.preferred_channel,
        is_new=outcome.is_new,
    )
    fx.events.append(events.resolved(msg, customer=customer, history=ctx.history, inbound=env))


def _sender_identifier(resolver: Resolver, msg: InteractionReceived, outcome: Outcome) -> int | None:
    claims, _ = claims_for([msg.sender], resolver.policy)
    for claim in claims:
        found = outcome.identifier_ids.get(claim.key)
        if found is not None:
            return found
    return None


async def handle_status(
    conn: asyncpg.Connection, resolver: Resolver, msg: InteractionStatusChanged, env: Envelope, fx: Effects
) -> None:
    # The interaction's own customer first: a withheld caller's status must reach the ephemeral
    # profile its call got, not a new one.
    recorded = await conn.fetchval(
        """
        SELECT coalesce(a.survivor_id, t.profile_id) FROM timeline t
        LEFT JOIN profile_aliases a ON a.alias_id = t.profile_id
        WHERE t.entry_id = $1
        """,
        f"interaction:{msg.interaction_id}",
    )
    if recorded is not None:
        outcome = Outcome(profile_id=recorded)
    else:
        obs = Observation(
            source=f"{msg.vendor.value}:{msg.channel.value}",
            observed_at=msg.occurred_at,
            interaction_id=msg.interaction_id,
        )
        outcome = await resolver.resolve(conn, [msg.customer_address], obs, source_id=env.event_id)
    fx.outcomes.append(outcome)
    if outcome.profile_id is None:
        return
    for merge in outcome.merges:
        fx.events += events.merged(
            merge, domains=[env.routing_domain], correlation_id=env.correlation_id, causation_id=env.event_id
        )
    if msg.status in _TERMINAL:
        await timeline.record(
            conn,
            timeline.NewEntry(
                entry_id=f"status:{msg.interaction_id}:{msg.status.value}",
                profile_id=outcome.profile_id,
                direction=msg.direction,
                kind="call" if msg.channel is Channel.VOICE else "delivery",
                summary=timeline.summarise(f"{msg.channel.value} {msg.status.value}", msg.error),
                source=msg.vendor.value,
                occurred_at=msg.occurred_at,
                channel=msg.channel,
                routing_domain=env.routing_domain,
                interaction_id=msg.interaction_id,
            ),
        )
    fx.events.append(events.status_resolved(msg, customer_id=outcome.profile_id, inbound=env))


async def handle_feed(conn: asyncpg.Connection, payload: object, env: Envelope) -> None:
    """Routing decisions and replies into the timeline (no events come out of these)."""
    await handle_feed_many(conn, [(payload, env)])


async def handle_feed_many(conn: asyncpg.Connection, items: Sequence[tuple[object, Envelope]]) -> None:
    """:func:`handle_feed` for a batch: one statement finds every entry's live customer, one pipelined
    round trip records the entries (two statements per decision before). The entries only depend on
    the profiles, which this transaction does not change, so doing them together changes nothing."""
    entries = [e for e in (_feed_entry(p, env) for p, env in items) if e is not None]
    live = await profiles.canonical_many(conn, [e.profile_id for e in entries])
    await timeline.record_many(
        conn,
        [
            dataclasses.replace(e, profile_id=found.id)
            for e in entries
            if (found := live.get(e.profile_id)) is not None and found.status == "active"
        ],
    )


def _feed_entry(payload: object, env: Envelope) -> timeline.NewEntry | None:
    at = env.occurred_at
    if isinstance(payload, TaskOffered):
        t = payload.task
        return timeline.NewEntry(
            f"offer:{payload.offer_id}", t.customer_id, "note", "offer",
            f"offered to agent {payload.agent_id} ({t.queue})", "routing", at, t.channel,
            routing_domain=env.routing_domain,
        )  # fmt: skip
    if isinstance(payload, TaskAssigned):
        t = payload.task
        return timeline.NewEntry(
            f"assigned:{payload.task_id}:{payload.agent_id}", t.customer_id, "note", "assignment",
            f"assigned to agent {payload.agent_id} ({t.queue})", "routing", at, t.channel,
            routing_domain=env.routing_domain,
        )  # fmt: skip
    if isinstance(payload, TaskClosed):
        return timeline.NewEntry(
            f"closed:{payload.task_id}", payload.customer_id, "note", "task_closed",
            f"closed: {payload.reason}" + (f" by agent {payload.agent_id}" if payload.agent_id else ""),
            "routing", at, routing_domain=env.routing_domain,
        )  # fmt: skip
    if isinstance(payload, ReplyRequested):
        kind = "promotion" if payload.purpose is ReplyPurpose.MARKETING else "message"
        return timeline.NewEntry(
            f"reply:{payload.reply_id}", payload.customer_id, "outbound", kind,
            timeline.summarise(payload.subject, payload.text), payload.author, at, payload.channel,
        )  # fmt: skip
    if isinstance(payload, ReplyDeliveryStatus):
        return timeline.NewEntry(
            f"delivery:{payload.reply_id}:{payload.state.value}", payload.customer_id, "outbound", "delivery",
            timeline.summarise(f"reply {payload.state.value.replace('_', ' ')}", payload.error),
            "gateway", payload.occurred_at, payload.channel,
        )  # fmt: skip
    return None
