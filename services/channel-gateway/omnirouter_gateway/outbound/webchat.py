"""Replies to web chat visitors: stored per visitor with a growing cursor, pushed to the visitor's
socket on whichever replica holds it (NOTIFY in the same transaction as the row, so the push follows
durability), and, for a chat backend, POSTed to WEBCHAT_CALLBACK_URL signed the Standard Webhooks way.

The row is the delivery: a visitor who is offline reads it on reconnect (``?cursor=``). A redelivered
reply (same reply id) finds its row and is neither stored nor pushed twice."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson

from omnirouter_gateway.inbound.webchat import sign, webhook_secret
from omnirouter_gateway.outbound.base import PermanentFailure, Sent, TransientFailure
from omnirouter_gateway.outbound.http import call, refuse
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import AddressKind, Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested

SCHEMA = "gateway"
#: LISTEN/NOTIFY channel: ``{"visitor_id": ..., "cursor": ...}`` once a reply row is committed.
NOTIFY_CHANNEL = "gateway_webchat"
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def reply_frame(reply: ReplyRequested, now: datetime) -> dict[str, Any]:
    """What the visitor sees: never the agent's id, only what kind of author wrote it."""
    author = reply.author.split(":", 1)[0] if reply.author else "agent"
    return {
        "type": "message",
        "id": reply.reply_id,
        "author": author if author in {"agent", "bot", "system"} else "agent",
        "text": reply.text,
        "attachments": [a.model_dump(mode="json", exclude_none=True) for a in reply.attachments],
        "conversation_id": reply.conversation_id,
        "sent_at": now.isoformat(),
    }


async def store_reply(conn: asyncpg.Connection, visitor_id: str, reply_id: str, frame: dict[str, Any]) -> int:
    """Append once; return the row's cursor (the existing one for a redelivered reply)."""
    async with conn.transaction():
        cursor = await conn.fetchval(
            """
            INSERT INTO webchat_messages (visitor_id, reply_id, frame) VALUES ($1, $2, $3::jsonb)
            ON CONFLICT (reply_id) DO NOTHING RETURNING cursor
            """,
            visitor_id,
            reply_id,
            orjson.dumps(frame).decode(),
        )
        if cursor is None:
            existing: int = await conn.fetchval(
                "SELECT cursor FROM webchat_messages WHERE reply_id = $1", reply_id
            )
            return existing
        await conn.execute(
            "SELECT pg_notify($1, $2)",
            NOTIFY_CHANNEL,
            orjson.dumps({"visitor_id": visitor_id, "cursor": cursor}).decode(),
        )
        return int(cursor)


class WebchatSender:
    vendor = Vendor.WEBCHAT
    channels = frozenset({Channel.WEBCHAT})

    def __init__(self, settings: GatewaySettings, pool: asyncpg.Pool | None = None) -> None:
        # Without the gateway's pool (a registry that builds senders from settings alone) each reply
        # opens its own connection: replies come at the pace agents type, so that stays cheap.
        self._pool = pool
        self._dsn = settings.database_url
        self._callback = settings.webchat_callback_url
        raw = settings.webchat_webhook_secret
        self._raw_secret = raw.get_secret_value() if raw is not None else None
        self._key = webhook_secret(self._raw_secret)
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        # The widget needs nothing but the database; a callback needs the key it is signed with.
        return self._callback is None or self._key is not None

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if reply.to.kind is not AddressKind.WEBCHAT:
            raise PermanentFailure(f"webchat: cannot reach a {reply.to.kind.value} address")
        frame = reply_frame(reply, datetime.now(UTC))
        try:
            async with self._connection() as conn:
                cursor = await store_reply(conn, reply.to.value, reply.reply_id, frame)
        except _DB_ERRORS as exc:
            raise TransientFailure(f"webchat: reply not stored ({type(exc).__name__})") from exc
        if self._callback:
            await self._post(reply, frame, cursor, http)
        return Sent(vendor_message_id=f"webchat:{cursor}")

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if self._pool is not None:
            async with self._pool.acquire() as conn:
                yield conn
            return
        conn = await asyncpg.connect(
            self._dsn, server_settings={"search_path": f"{SCHEMA},public"}, timeout=10
        )
        try:
            yield conn
        finally:
            await conn.close()

    async def _post(
        self, reply: ReplyRequested, frame: dict[str, Any], cursor: int, http: aiohttp.ClientSession
    ) -> None:
        if self._key is None or self._callback is None:
            raise PermanentFailure("webchat: WEBCHAT_CALLBACK_URL is set but WEBCHAT_WEBHOOK_SECRET is not")
        body = orjson.dumps({**frame, "type": "reply", "visitor_id": reply.to.value, "cursor": cursor})
        timestamp = str(int(time.time()))
        # The reply id as webhook-id: a retried POST is recognisably the same message to the backend.
        headers = {
            "webhook-id": reply.reply_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": sign(self._key, reply.reply_id, timestamp, body),
            "Content-Type": "application/json",
        }
        answer = await call(
            http,
            self._callback,
            vendor="webchat",
            timeout_s=self._timeout_s,
            secrets=[self._raw_secret],
            headers=headers,
            data=body,
        )
        if answer.status >= 300:
            raise refuse("webchat", answer, [self._raw_secret])
