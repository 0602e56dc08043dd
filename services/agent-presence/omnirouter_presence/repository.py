"""PostgreSQL access for agent-presence (schema ``presence``). Functions take a connection so callers
decide the transaction; nothing here publishes to Kafka."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from omnirouter_presence.domain.frames import ACTIVE_TASK_STATES, Frame, OfferState, TaskState
from omnirouter_presence.domain.presence import PresenceState, derive_state
from omnirouter_presence.domain.roster import AgentRecord
from omnirouter_shared.contracts.agents import AgentKind, AgentStatus

SCHEMA = "presence"
#: LISTEN/NOTIFY channel: {"agent_id", "seq"} when a frame was appended to an agent's feed, or
#: {"agent_id", "disconnect": reason} when the agent's desktops must be closed (disabled, new token).
NOTIFY_CHANNEL = "presence_feed"


async def init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(
            typ, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


@dataclass(frozen=True, slots=True)
class AgentRow:
    record: AgentRecord
    token_hash: bytes
    webhook_secret: str | None
    status: AgentStatus
    status_reason: str | None
    state: PresenceState
    state_since: datetime
    last_seen_at: datetime | None
    feed_seq: int

    @property
    def id(self) -> str:
        return self.record.id


def _agent(row: asyncpg.Record) -> AgentRow:
    record = AgentRecord(
        id=row["id"],
        name=row["name"],
        kind=AgentKind(row["kind"]),
        skills=row["skills"],
        capacity=row["capacity"],
        teams=tuple(row["teams"]),
        routing_domain=row["routing_domain"],
        enabled=row["enabled"],
        webhook_url=row["webhook_url"],
    )
    return AgentRow(
        record=record,
        token_hash=bytes(row["token_hash"]),
        webhook_secret=row["webhook_secret"],
        status=AgentStatus(row["status"]),
        status_reason=row["status_reason"],
        state=PresenceState(row["state"]),
        state_since=row["state_since"],
        last_seen_at=row["last_seen_at"],
        feed_seq=row["feed_seq"],
    )


# -- roster ---------------------------------------------------------------------------------------------
async def insert_agent(
    conn: asyncpg.Connection, rec: AgentRecord, token_hash: bytes, webhook_secret: str | None
) -> bool:
    """False when the id is taken."""
    row = await conn.fetchrow(
        """
        INSERT INTO agents (id, name, kind, skills, capacity, teams, routing_domain, enabled, token_hash,
                            webhook_url, webhook_secret)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
        ON CONFLICT (id) DO NOTHING
        RETURNING id
        """,
        rec.id,
        rec.name,
        rec.kind.value,
        rec.skills,
        rec.capacity,
        list(rec.teams),
        rec.routing_domain,
        rec.enabled,
        token_hash,
        rec.webhook_url,
        webhook_secret,
    )
    if row is not None:
        await _history(conn, rec.id, PresenceState.OFFLINE, AgentStatus.OFFLINE, None, "created")
    return row is not None


async def update_agent(conn: asyncpg.Connection, rec: AgentRecord, webhook_secret: str | None) -> None:
    await conn.execute(
        """
        UPDATE agents SET name = $2, kind = $3, skills = $4, capacity = $5, teams = $6, routing_domain = $7,
               enabled = $8, webhook_url = $9, webhook_secret = $10, updated_at = now()
        WHERE id = $1
        """,
        rec.id,
        rec.name,
        rec.kind.value,
        rec.skills,
        rec.capacity,
        list(rec.teams),
        rec.routing_domain,
        rec.enabled,
        rec.webhook_url,
        webhook_secret,
    )


async def set_token(conn: asyncpg.Connection, agent_id: str, token_hash: bytes) -> None:
    await conn.execute(
        "UPDATE agents SET token_hash = $2, token_rotated_at = now(), updated_at = now() WHERE id = $1",
        agent_id,
        token_hash,
    )


async def get_agent(conn: asyncpg.Connection, agent_id: str, *, lock: bool = False) -> AgentRow | None:
    sql = "SELECT * FROM agents WHERE id = $1 FOR UPDATE" if lock else "SELECT * FROM agents WHERE id = $1"
    row = await conn.fetchrow(sql, agent_id)
    return _agent(row) if row is not None else None


async def lock_agents(conn: asyncpg.Connection, agent_ids: Sequence[str]) -> dict[str, AgentRow]:
    """Lock these agent rows in id order (the one lock order of the service; see actions._own_task) and
    return them, so the caller need not read each one again."""
    if not agent_ids:
        return {}
    rows = await conn.fetch(
        "SELECT * FROM agents WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", list(agent_ids)
    )
    return {r["id"]: _agent(r) for r in rows}


async def list_agents(conn: asyncpg.Connection) -> list[AgentRow]:
    return [_agent(r) for r in await conn.fetch("SELECT * FROM agents ORDER BY id")]


# -- presence -------------------------------------------------------------------------------------------
async def load_by_channel(conn: asyncpg.Connection, agent_id: str) -> tuple[dict[str, int], int]:
    """Assigned tasks per channel, and the number of tasks in wrap-up."""
    rows = await conn.fetch(
        "SELECT channel, state, count(*) AS n FROM tasks WHERE agent_id = $1 AND state = ANY($2::text[]) "
        "GROUP BY channel, state",
        agent_id,
        list(ACTIVE_TASK_STATES),
    )
    load: dict[str, int] = {}
    wrapups = 0
    for r in rows:
        if r["state"] == TaskState.ASSIGNED.value:
            load[r["channel"]] = load.get(r["channel"], 0) + r["n"]
        else:
            wrapups += r["n"]
    return load, wrapups


async def _history(
    conn: asyncpg.Connection,
    agent_id: str,
    state: PresenceState,
    status: AgentStatus,
    reason: str | None,
    source: str,
) -> None:
    await conn.execute(
        "INSERT INTO agent_state_history (agent_id, state, status, reason, source) VALUES ($1, $2, $3, $4, $5)",
        agent_id,
        state.value,
        status.value,
        reason,
        source,
    )


async def refresh_state(
    conn: asyncpg.Connection,
    agent_id: str,
    source: str,
    *,
    status: AgentStatus | None = None,
    reason: str | None = None,
    locked: AgentRow | None = None,
) -> AgentRow | None:
    """Set the chosen status (if given), re-derive the state from load and capacity, and record a
    history row when either changed. Call inside a transaction: the agent row is locked. ``locked``:
    the row as this transaction already locked and last saw it, to spare reading it again."""
    refreshed = await refresh_state_load(conn, agent_id, source, status=status, reason=reason, locked=locked)
    return refreshed[0] if refreshed is not None else None


async def refresh_state_load(
    conn: asyncpg.Connection,
    agent_id: str,
    source: str,
    *,
    status: AgentStatus | None = None,
    reason: str | None = None,
    locked: AgentRow | None = None,
) -> tuple[AgentRow, dict[str, int]] | None:
    """:func:`refresh_state`, and the agent's assigned tasks per channel it was derived from (still
    current until the transaction changes a task: a state frame needs no second count)."""
    agent = locked if locked is not None else await get_agent(conn, agent_id, lock=True)
    if agent is None:
        return None
    new_status = status if status is not None else agent.status
    new_reason = reason if status is not None else agent.status_reason
    load, wrapups = await load_by_channel(conn, agent_id)
    state = derive_state(new_status, agent.record.capacity, load, wrapups)
    if new_status == agent.status and new_reason == agent.status_reason and state == agent.state:
        return agent, load
    state_changed = state != agent.state
    # The row and its history line in one statement.
    row = await conn.fetchrow(
        """
        WITH updated AS (
            UPDATE agents SET status = $2, status_reason = $3, state = $4,
                   state_since = CASE WHEN $5 THEN now() ELSE state_since END,
                   last_seen_at = CASE WHEN $2 = 'offline' THEN last_seen_at ELSE coalesce(last_seen_at, now()) END,
                   updated_at = now()
            WHERE id = $1 RETURNING *
        ), history AS (
            INSERT INTO agent_state_history (agent_id, state, status, reason, source)
            SELECT id, $4, $2, $3, $6 FROM updated
        )
        SELECT * FROM updated
        """,
        agent_id,
        new_status.value,
        new_reason,
        state.value,
        state_changed,
        source,
    )
    return _agent(row), load


async def touch_seen(conn: asyncpg.Connection, agent_ids: Sequence[str]) -> None:
    """Lock the rows in id order, the service's one lock order (see lock_agents): a bare
    ``UPDATE ... WHERE id = ANY(...)`` locks in scan order and deadlocked against the decisions
    consumer, which holds some of these rows while it waits for others."""
    if agent_ids:
        await conn.execute(
            """
            UPDATE agents a SET last_seen_at = now()
            FROM (SELECT id FROM agents WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE) locked
            WHERE a.id = locked.id
            """,
            sorted(set(agent_ids)),
        )


async def stale_agents(conn: asyncpg.Connection, grace_s: float, limit: int = 100) -> list[str]:
    """Agents not offline whose desktop has not been seen for the grace period (locked, skipping rows
    another replica is already handling)."""
    rows = await conn.fetch(
        """
        SELECT id FROM agents
        WHERE status <> 'offline' AND (last_seen_at IS NULL OR last_seen_at < now() - make_interval(secs => $1))
        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED
        """,
        grace_s,
        limit,
    )
    return [r["id"] for r in rows]


async def seen_within(conn: asyncpg.Connection, agent_id: str, seconds: float) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT last_seen_at >= now() - make_interval(secs => $2) FROM agents WHERE id = $1",
            agent_id,
            seconds,
        )
    )


async def agents_overview(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT a.id, a.name, a.kind, a.enabled, a.status, a.status_reason, a.state, a.state_since, a.capacity,
               a.teams, coalesce(l.load, '{}'::jsonb) AS load
        FROM agents a
        LEFT JOIN (
            SELECT agent_id, jsonb_object_agg(channel, n) AS load FROM (
                SELECT agent_id, channel, count(*) AS n FROM tasks WHERE state = 'assigned'
                GROUP BY agent_id, channel
            ) c GROUP BY agent_id
        ) l ON l.agent_id = a.id
        ORDER BY a.id
        """
    )
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "kind": r["kind"],
            "enabled": r["enabled"],
            "status": r["status"],
            "reason": r["status_reason"],
            "state": r["state"],
            "since": r["state_since"].isoformat(),
            "capacity": r["capacity"],
            "load": r["load"],
            "teams": list(r["teams"]),
        }
        for r in rows
    ]


async def state_history(conn: asyncpg.Connection, agent_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT state, status, reason, source, changed_at FROM agent_state_history WHERE agent_id = $1 "
        "ORDER BY id DESC LIMIT $2",
        agent_id,
        limit,
    )
    return [{**dict(r), "changed_at": r["changed_at"].isoformat()} for r in rows]


# -- feed -----------------------------------------------------------------------------------------------
async def append_feed(
    conn: asyncpg.Connection, agent_id: str, event_id: str, frame: Frame, *, webhook: bool
) -> int:
    """Append a frame to the agent's feed, queue its webhook, and notify every replica on commit.

    Sequence, row and NOTIFY in one statement: one round trip per frame instead of three (a routed
    contact appends five or so frames)."""
    seq: int | None = await conn.fetchval(
        """
        WITH s AS (UPDATE agents SET feed_seq = feed_seq + 1 WHERE id = $1 RETURNING feed_seq),
             f AS (INSERT INTO agent_feed (agent_id, seq, event_id, frame)
                   SELECT $1::text, s.feed_seq, $2::text, $3::jsonb FROM s RETURNING seq)
        SELECT f.seq FROM f, LATERAL pg_notify($4::text, json_build_object('agent_id', $1::text, 'seq', f.seq)::text)
        """,
        agent_id,
        event_id,
        frame,
        NOTIFY_CHANNEL,
    )
    if seq is None:
        raise LookupError(f"no agent {agent_id!r} to append a frame for")
    if webhook:
        await conn.execute(
            "INSERT INTO webhook_outbox (agent_id, msg_id, body) VALUES ($1, $2, $3) ON CONFLICT (msg_id) DO NOTHING",
            agent_id,
            f"{agent_id}:{event_id}",
            {**frame, "seq": seq, "agent_id": agent_id},
        )
    return seq


async def notify(conn: asyncpg.Connection, message: dict[str, Any]) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, orjson.dumps(message).decode())


async def feed_after(
    conn: asyncpg.Connection, agent_id: str, seq: int, limit: int = 200
) -> list[tuple[int, Frame]]:
    rows = await conn.fetch(
        "SELECT seq, frame FROM agent_feed WHERE agent_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        agent_id,
        seq,
        limit,
    )
    return [(r["seq"], r["frame"]) for r in rows]


async def prune_feed(conn: asyncpg.Connection, retention_s: float) -> None:
    await conn.execute(
        "DELETE FROM agent_feed WHERE created_at < now() - make_interval(secs => $1)", retention_s
    )


# -- offers and tasks -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OfferRow:
    offer_id: str
    agent_id: str
    task_id: str
    customer_id: str
    task: dict[str, Any]
    expires_at: datetime
    state: OfferState
    response: str | None
    correlation_id: str | None


def _offer(row: asyncpg.Record) -> OfferRow:
    return OfferRow(
        offer_id=row["offer_id"],
        agent_id=row["agent_id"],
        task_id=row["task_id"],
        customer_id=row["customer_id"],
        task=row["task"],
        expires_at=row["expires_at"],
        state=OfferState(row["state"]),
        response=row["response"],
        correlation_id=row["correlation_id"],
    )


@dataclass(frozen=True, slots=True)
class TaskRow:
    task_id: str
    agent_id: str
    conversation_id: str
    customer_id: str
    channel: str
    task: dict[str, Any]
    state: TaskState
    correlation_id: str | None


def _task(row: asyncpg.Record) -> TaskRow:
    return TaskRow(
        task_id=row["task_id"],
        agent_id=row["agent_id"],
        conversation_id=row["conversation_id"],
        customer_id=row["customer_id"],
        channel=row["channel"],
        task=row["task"],
        state=TaskState(row["state"]),
        correlation_id=row["correlation_id"],
    )


async def insert_offer(
    conn: asyncpg.Connection,
    offer_id: str,
    agent_id: str,
    task_id: str,
    customer_id: str,
    task: dict[str, Any],
    expires_at: datetime,
    correlation_id: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO offers (offer_id, agent_id, task_id, customer_id, task, expires_at, correlation_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (offer_id) DO NOTHING
        """,
        offer_id,
        agent_id,
        task_id,
        customer_id,
        task,
        expires_at,
        correlation_id,
    )


async def set_offer_state(conn: asyncpg.Connection, offer_id: str, state: OfferState) -> None:
    await conn.execute(
        "UPDATE offers SET state = $2, updated_at = now() WHERE offer_id = $1 AND state = 'pending'",
        offer_id,
        state.value,
    )


async def settle_offers_for_task(conn: asyncpg.Connection, agent_id: str, task_id: str) -> None:
    await conn.execute(
        "UPDATE offers SET state = 'accepted', updated_at = now() "
        "WHERE agent_id = $1 AND task_id = $2 AND state = 'pending'",
        agent_id,
        task_id,
    )


async def find_pending_offer(
    conn: asyncpg.Connection, agent_id: str, *, task_id: str | None, offer_id: str | None
) -> OfferRow | None:
    """The agent's live offer by offer id or task id (an expired one is not live)."""
    row = await conn.fetchrow(
        """
        SELECT * FROM offers
        WHERE agent_id = $1 AND state = 'pending' AND expires_at > now()
          AND ($2::text IS NULL OR task_id = $2) AND ($3::text IS NULL OR offer_id = $3)
        ORDER BY created_at DESC LIMIT 1
        """,
        agent_id,
        task_id,
        offer_id,
    )
    return _offer(row) if row is not None else None


async def get_offer(conn: asyncpg.Connection, offer_id: str) -> OfferRow | None:
    row = await conn.fetchrow("SELECT * FROM offers WHERE offer_id = $1", offer_id)
    return _offer(row) if row is not None else None


async def record_response(conn: asyncpg.Connection, offer_id: str, response: str) -> None:
    await conn.execute(
        "UPDATE offers SET response = $2, updated_at = now() WHERE offer_id = $1", offer_id, response
    )


async def pending_offers(conn: asyncpg.Connection, agent_id: str) -> list[OfferRow]:
    rows = await conn.fetch(
        "SELECT * FROM offers WHERE agent_id = $1 AND state = 'pending' AND expires_at > now() ORDER BY created_at",
        agent_id,
    )
    return [_offer(r) for r in rows]


async def upsert_task(
    conn: asyncpg.Connection,
    agent_id: str,
    task_id: str,
    conversation_id: str,
    customer_id: str,
    channel: str,
    task: dict[str, Any],
    correlation_id: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO tasks (task_id, agent_id, conversation_id, customer_id, channel, task, correlation_id)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (task_id) DO UPDATE SET agent_id = excluded.agent_id, task = excluded.task,
            customer_id = excluded.customer_id, state = 'assigned', assigned_at = now(), completed_at = NULL,
            correlation_id = excluded.correlation_id, updated_at = now()
        """,
        task_id,
        agent_id,
        conversation_id,
        customer_id,
        channel,
        task,
        correlation_id,
    )


async def append_task_message(conn: asyncpg.Connection, task_id: str, message: dict[str, Any]) -> None:
    await conn.execute(
        """
        UPDATE tasks SET task = jsonb_set(task, '{messages}', coalesce(task->'messages', '[]'::jsonb) || $2::jsonb),
               updated_at = now()
        WHERE task_id = $1
        """,
        task_id,
        [message],
    )


async def record_reply(conn: asyncpg.Connection, task_id: str, reply: dict[str, Any]) -> None:
    """Keep the agent's replies with the task, so a reloaded desktop shows the whole conversation."""
    await conn.execute(
        """
        UPDATE tasks SET task = jsonb_set(task, '{replies}', coalesce(task->'replies', '[]'::jsonb) || $2::jsonb),
               updated_at = now()
        WHERE task_id = $1 AND NOT coalesce(task->'replies', '[]'::jsonb) @> $3::jsonb
        """,
        task_id,
        [reply],
        [{"reply_id": reply["reply_id"]}],
    )


async def set_task_state(
    conn: asyncpg.Connection, task_id: str, state: TaskState, *, only_from: Sequence[TaskState] = ()
) -> bool:
    result: str = await conn.execute(
        """
        UPDATE tasks SET state = $2, updated_at = now(),
               completed_at = CASE WHEN $2 IN ('wrapup', 'done') THEN coalesce(completed_at, now()) ELSE completed_at END
        WHERE task_id = $1 AND (cardinality($3::text[]) = 0 OR state = ANY($3::text[]))
        """,
        task_id,
        state.value,
        [s.value for s in only_from],
    )
    return result != "UPDATE 0"


async def task_owner(conn: asyncpg.Connection, task_id: str) -> str | None:
    """Who holds the task, or was last offered it (None when presence never heard of it)."""
    owner: str | None = await conn.fetchval(
        "SELECT agent_id FROM tasks WHERE task_id = $1 UNION ALL "
        "(SELECT agent_id FROM offers WHERE task_id = $1 ORDER BY created_at DESC LIMIT 1) LIMIT 1",
        task_id,
    )
    return owner


async def get_task(conn: asyncpg.Connection, agent_id: str, task_id: str) -> TaskRow | None:
    row = await conn.fetchrow("SELECT * FROM tasks WHERE task_id = $1 AND agent_id = $2", task_id, agent_id)
    return _task(row) if row is not None else None


async def active_tasks(conn: asyncpg.Connection, agent_id: str) -> list[TaskRow]:
    rows = await conn.fetch(
        "SELECT * FROM tasks WHERE agent_id = $1 AND state = ANY($2::text[]) ORDER BY assigned_at",
        agent_id,
        list(ACTIVE_TASK_STATES),
    )
    return [_task(r) for r in rows]


async def agent_has_customer(conn: asyncpg.Connection, agent_id: str, customer_id: str) -> bool:
    """An agent sees a customer's context only while it holds that customer's work (a live offer or an
    active task)."""
    return bool(
        await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM tasks WHERE agent_id = $1 AND customer_id = $2 AND state = ANY($3::text[]))
                OR EXISTS (SELECT 1 FROM offers WHERE agent_id = $1 AND customer_id = $2 AND state = 'pending'
                           AND expires_at > now())
            """,
            agent_id,
            customer_id,
            list(ACTIVE_TASK_STATES),
        )
    )


# -- webhook outbox -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    agent_id: str
    msg_id: str
    body: dict[str, Any]
    attempts: int
    url: str | None
    secret: str | None


async def claim_webhooks(conn: asyncpg.Connection, limit: int, lease_s: float) -> list[OutboxRow]:
    """Lease due deliveries: another replica will not pick them up until the lease runs out, so a
    replica that dies mid-delivery only delays them."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM webhook_outbox WHERE state = 'pending' AND next_attempt_at <= now()
            ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
        )
        UPDATE webhook_outbox w SET next_attempt_at = now() + make_interval(secs => $2)
        FROM due, agents a WHERE w.id = due.id AND a.id = w.agent_id
        RETURNING w.id, w.agent_id, w.msg_id, w.body, w.attempts, a.webhook_url, a.webhook_secret
        """,
        limit,
        lease_s,
    )
    return [
        OutboxRow(
            r["id"],
            r["agent_id"],
            r["msg_id"],
            r["body"],
            r["attempts"],
            r["webhook_url"],
            r["webhook_secret"],
        )
        for r in sorted(rows, key=lambda r: int(r["id"]))
    ]


async def webhook_delivered(conn: asyncpg.Connection, outbox_id: int) -> None:
    await conn.execute(
        "UPDATE webhook_outbox SET state = 'delivered', attempts = attempts + 1, delivered_at = now(), "
        "last_error = NULL WHERE id = $1",
        outbox_id,
    )


async def webhook_failed(
    conn: asyncpg.Connection, outbox_id: int, error: str, retry_in_s: float | None
) -> None:
    """Record a failed attempt; ``retry_in_s=None`` gives up (state ``dead``)."""
    await conn.execute(
        """
        UPDATE webhook_outbox SET attempts = attempts + 1, last_error = $2,
               state = CASE WHEN $3::float8 IS NULL THEN 'dead' ELSE 'pending' END,
               next_attempt_at = now() + make_interval(secs => coalesce($3::float8, 0))
        WHERE id = $1
        """,
        outbox_id,
        error[:1000],
        retry_in_s,
    )
