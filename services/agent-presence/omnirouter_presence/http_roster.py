"""Admin API: the roster of agents and bots, token rotation, presence overview and state history."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from omnirouter_presence import repository as repo
from omnirouter_presence.actions import ActionError, AgentActions
from omnirouter_presence.domain.roster import (
    AgentCreate,
    AgentFields,
    AgentRecord,
    hash_token,
    new_token,
    new_webhook_secret,
)
from omnirouter_presence.http_auth import require_admin
from omnirouter_presence.http_common import api_error, parse, read_json
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.contracts.agents import AgentKind, AgentUpserted
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.http.errors import ApiError
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.topics import Topic


def agent_json(agent: repo.AgentRow) -> dict[str, object]:
    return {
        **agent.record.model_dump(mode="json"),
        "status": agent.status.value,
        "reason": agent.status_reason,
        "state": agent.state.value,
        "state_since": agent.state_since.isoformat(),
        "last_seen_at": agent.last_seen_at.isoformat() if agent.last_seen_at else None,
    }


class RosterApi:
    def __init__(
        self, pool: asyncpg.Pool, producer: EventProducer, settings: PresenceSettings, actions: AgentActions
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._settings = settings
        self._actions = actions
        self._admin = settings.admin_token.get_secret_value()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/agents", self.create),
            web.get("/v1/agents", self.list),
            web.get("/v1/agents/{id}", self.get),
            web.patch("/v1/agents/{id}", self.update),
            web.post("/v1/agents/{id}/disable", self.disable),
            web.post("/v1/agents/{id}/enable", self.enable),
            web.post("/v1/agents/{id}/token", self.rotate_token),
            web.post("/v1/agents/{id}/webhook-secret", self.rotate_webhook_secret),
            web.get("/v1/agents/{id}/history", self.history),
        ]

    async def _publish(self, rec: AgentRecord) -> None:
        await self._publish_to(rec.routing_domain, rec.upserted())

    async def _publish_to(self, domain: str, payload: AgentUpserted) -> None:
        env = new_envelope(payload, producer="agent-presence", routing_domain=domain)
        try:
            await self._producer.publish(Topic.ROUTING_INBOX, domain, env)
        except BrokerUnavailable as exc:
            raise ApiError(
                503, "broker_unavailable", "the roster change could not be published; retry"
            ) from exc

    async def _load(self, conn: asyncpg.Connection, agent_id: str, *, lock: bool = False) -> repo.AgentRow:
        agent = await repo.get_agent(conn, agent_id, lock=lock)
        if agent is None:
            raise ApiError(404, "not_found", f"no agent {agent_id!r}")
        return agent

    async def create(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        body = parse(AgentCreate, await read_json(request))
        rec = AgentRecord(
            id=body.id,
            name=body.name,
            kind=body.kind or AgentKind.HUMAN,
            skills=dict(body.skills or {}),
            capacity={str(c): n for c, n in (body.capacity or {}).items()},
            teams=body.teams or (),
            routing_domain=body.routing_domain or "default",
            enabled=True if body.enabled is None else body.enabled,
            webhook_url=body.webhook_url or None,
        )
        token = new_token()
        secret = new_webhook_secret() if rec.webhook_url else None
        async with self._pool.acquire() as conn, conn.transaction():
            if not await repo.insert_agent(conn, rec, hash_token(token), secret):
                raise ApiError(409, "conflict", f"agent {rec.id!r} already exists")
            # Published inside the transaction: no agent exists that routing was not told about.
            await self._publish(rec)
        answer: dict[str, object] = {"id": rec.id, "token": token}
        if secret is not None:
            answer["webhook_secret"] = secret
        return web.json_response(answer, status=201, headers={"Location": f"/v1/agents/{rec.id}"})

    async def list(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        async with self._pool.acquire() as conn:
            agents = await repo.list_agents(conn)
        return web.json_response({"agents": [agent_json(a) for a in agents]})

    async def get(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        async with self._pool.acquire() as conn:
            agent = await self._load(conn, request.match_info["id"])
        return web.json_response(agent_json(agent))

    async def update(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        update = parse(AgentFields, await read_json(request))
        return await self._change(request.match_info["id"], update)

    async def _change(self, agent_id: str, update: AgentFields) -> web.Response:
        answer: dict[str, object] = {}
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await self._load(conn, agent_id, lock=True)
            rec = agent.record.apply(update)
            secret = agent.webhook_secret
            if rec.webhook_url and not secret:
                secret = new_webhook_secret()
                answer["webhook_secret"] = secret
            await repo.update_agent(conn, rec, secret if rec.webhook_url else None)
            if rec.routing_domain != agent.record.routing_domain:
                # The old domain's routing must stop offering this agent work.
                old = agent.record.upserted().model_copy(update={"enabled": False})
                await self._publish_to(agent.record.routing_domain, old)
            await self._publish(rec)
            # A capacity change can make an available agent busy or free again.
            await repo.refresh_state(conn, agent_id, "admin")
        if not rec.enabled and agent.record.enabled:
            await self._disable_effects(agent_id)
        async with self._pool.acquire() as conn:
            fresh = await self._load(conn, agent_id)
        return web.json_response({**agent_json(fresh), **answer})

    async def _disable_effects(self, agent_id: str) -> None:
        try:
            await self._actions.go_offline(agent_id, "disabled", "admin")
        except ActionError as exc:
            raise api_error(exc) from None
        async with self._pool.acquire() as conn:
            await repo.notify(conn, {"agent_id": agent_id, "disconnect": "agent_disabled"})

    async def disable(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        return await self._change(request.match_info["id"], AgentFields(enabled=False))

    async def enable(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        return await self._change(request.match_info["id"], AgentFields(enabled=True))

    async def rotate_token(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        agent_id = request.match_info["id"]
        token = new_token()
        async with self._pool.acquire() as conn, conn.transaction():
            await self._load(conn, agent_id, lock=True)
            await repo.set_token(conn, agent_id, hash_token(token))
            # Desktops signed in with the old token are closed; they sign in again with the new one.
            await repo.notify(conn, {"agent_id": agent_id, "disconnect": "token_rotated"})
        return web.json_response({"id": agent_id, "token": token})

    async def rotate_webhook_secret(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        agent_id = request.match_info["id"]
        secret = new_webhook_secret()
        async with self._pool.acquire() as conn, conn.transaction():
            agent = await self._load(conn, agent_id, lock=True)
            if agent.record.webhook_url is None:
                raise ApiError(409, "no_webhook", "the agent has no webhook URL")
            await repo.update_agent(conn, agent.record, secret)
        return web.json_response({"id": agent_id, "webhook_secret": secret})

    async def history(self, request: web.Request) -> web.Response:
        require_admin(request, self._admin)
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "100"))))
        except ValueError:
            raise ApiError(400, "bad_request", "limit must be an integer") from None
        async with self._pool.acquire() as conn:
            await self._load(conn, request.match_info["id"])
            rows = await repo.state_history(conn, request.match_info["id"], limit)
        return web.json_response({"agent_id": request.match_info["id"], "history": rows})
