"""The desktop's API: the WebSocket protocol and a REST call for every action, each reachable only with
the agent's own token and acting only on the agent's own offers, tasks and customers."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web
from pydantic import ValidationError

from omnirouter_presence import metrics
from omnirouter_presence import repository as repo
from omnirouter_presence.actions import ActionError, AgentActions
from omnirouter_presence.domain.protocol import (
    CLIENT_COMMANDS,
    AcceptCommand,
    ClientCommand,
    CompleteCommand,
    HeartbeatCommand,
    RejectCommand,
    ReplyCommand,
    ResumeCommand,
    StatusCommand,
    TransferCommand,
    WrapupDoneCommand,
)
from omnirouter_presence.http_auth import require_agent
from omnirouter_presence.http_common import api_error, parse, read_json, validation_reason
from omnirouter_presence.hub import DesktopHub, DesktopSession
from omnirouter_presence.settings import PresenceSettings
from omnirouter_shared.http.errors import ApiError
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

MAX_FRAME = 256 * 1024


class AgentApi:
    def __init__(
        self,
        pool: asyncpg.Pool,
        actions: AgentActions,
        hub: DesktopHub,
        settings: PresenceSettings,
        http: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self._pool = pool
        self._actions = actions
        self._hub = hub
        self._settings = settings
        self._http = http

    def routes(self) -> list[web.RouteDef]:
        base = "/v1/agents/{id}"
        return [
            web.get(f"{base}/ws", self.websocket),
            web.get(f"{base}/state", self.state),
            web.put(f"{base}/status", self.status),
            web.post(f"{base}/status", self.status),
            web.post(f"{base}/heartbeat", self.heartbeat),
            web.post(f"{base}/offers/{{offer_id}}/accept", self.accept),
            web.post(f"{base}/offers/{{offer_id}}/reject", self.reject),
            web.post(f"{base}/tasks/{{task_id}}/complete", self.complete),
            web.post(f"{base}/tasks/{{task_id}}/wrapup-done", self.wrapup_done),
            web.post(f"{base}/tasks/{{task_id}}/transfer", self.transfer),
            web.post(f"{base}/tasks/{{task_id}}/replies", self.reply),
            web.get(f"{base}/tasks/{{task_id}}/customer", self.customer),
        ]

    # -- REST ------------------------------------------------------------------------------------------
    async def _run(self, request: web.Request, command: ClientCommand, status: int = 200) -> web.Response:
        agent = await require_agent(request, self._pool, request.match_info["id"])
        try:
            result = await self._execute(agent, command)
        except ActionError as exc:
            metrics.COMMANDS.labels(command.type, exc.code).inc()
            raise api_error(exc) from None
        metrics.COMMANDS.labels(command.type, "ok").inc()
        return web.json_response(result, status=status)

    async def _body(self, request: web.Request, extra: dict[str, Any]) -> dict[str, Any]:
        # Authenticate before reading the body: an anonymous caller learns nothing about its validity.
        await require_agent(request, self._pool, request.match_info["id"])
        return {**(await read_json(request, optional=True)), **extra}

    async def state(self, request: web.Request) -> web.Response:
        agent = await require_agent(request, self._pool, request.match_info["id"])
        try:
            seq, frames = await self._actions.snapshot(agent.id)
        except ActionError as exc:
            raise api_error(exc) from None
        return web.json_response(
            {
                "seq": seq,
                "state": frames[0],
                "offers": [f for f in frames if f["type"] == "offer"],
                "tasks": [f for f in frames if f["type"] == "assigned"],
            }
        )

    async def status(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "status"})
        return await self._run(request, parse(StatusCommand, body))

    async def heartbeat(self, request: web.Request) -> web.Response:
        return await self._run(request, HeartbeatCommand())

    async def accept(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "accept", "offer_id": request.match_info["offer_id"]})
        return await self._run(request, parse(AcceptCommand, body), status=202)

    async def reject(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "reject", "offer_id": request.match_info["offer_id"]})
        return await self._run(request, parse(RejectCommand, body), status=202)

    async def complete(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "complete", "task_id": request.match_info["task_id"]})
        return await self._run(request, parse(CompleteCommand, body), status=202)

    async def wrapup_done(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "wrapup_done", "task_id": request.match_info["task_id"]})
        return await self._run(request, parse(WrapupDoneCommand, body), status=202)

    async def transfer(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "transfer", "task_id": request.match_info["task_id"]})
        return await self._run(request, parse(TransferCommand, body), status=202)

    async def reply(self, request: web.Request) -> web.Response:
        body = await self._body(request, {"type": "reply", "task_id": request.match_info["task_id"]})
        return await self._run(request, parse(ReplyCommand, body), status=202)

    async def customer(self, request: web.Request) -> web.Response:
        """The customer's cross-channel timeline, for the agent holding (or offered) the task only."""
        agent = await require_agent(request, self._pool, request.match_info["id"])
        task_id = request.match_info["task_id"]
        async with self._pool.acquire() as conn:
            task = await repo.get_task(conn, agent.id, task_id)
            customer_id = task.customer_id if task is not None else None
            if customer_id is None:
                offer = await repo.find_pending_offer(conn, agent.id, task_id=task_id, offer_id=None)
                customer_id = offer.customer_id if offer is not None else None
            if customer_id is None or not await repo.agent_has_customer(conn, agent.id, customer_id):
                owner = await repo.task_owner(conn, task_id)
                if owner is not None and owner != agent.id:
                    raise ApiError(403, "forbidden", "this task is not yours")
                raise ApiError(404, "not_found", "no active task or live offer with this id for this agent")
        if not self._settings.identity_url or not self._settings.api_tokens:
            raise ApiError(
                503, "unavailable", "customer context is not configured (IDENTITY_URL, OMNI_API_TOKENS)"
            )
        url = f"{self._settings.identity_url}/v1/customers/{customer_id}/timeline"
        token = self._settings.api_tokens[0].get_secret_value()
        try:
            async with self._http().get(
                url,
                headers={"Authorization": f"Bearer {token}"},
                params={k: v for k, v in request.query.items() if k in {"limit", "before"}},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                payload = await resp.read()
                if resp.status >= 500 or resp.status in (401, 403):
                    raise ApiError(502, "upstream_error", f"identity-resolution answered {resp.status}")
                return web.Response(body=payload, status=resp.status, content_type="application/json")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(
                502, "upstream_error", f"identity-resolution is unreachable: {type(exc).__name__}"
            ) from None

    # -- actions ---------------------------------------------------------------------------------------
    async def _execute(self, agent: repo.AgentRow, command: ClientCommand) -> dict[str, Any]:
        handlers: dict[type[Any], Callable[[repo.AgentRow, Any], Awaitable[dict[str, Any]]]] = {
            StatusCommand: self._actions.set_status,
            AcceptCommand: self._actions.accept,
            RejectCommand: self._actions.reject,
            CompleteCommand: self._actions.complete,
            WrapupDoneCommand: self._actions.wrapup_done,
            TransferCommand: self._actions.transfer,
            ReplyCommand: self._actions.reply,
        }
        if isinstance(command, HeartbeatCommand):
            await self._actions.heartbeat(agent)
            return {"interval_s": self._settings.heartbeat_interval_s}
        handler = handlers.get(type(command))
        if handler is None:
            raise ActionError(400, "unsupported", f"{command.type} is not available here")
        return await handler(agent, command)

    # -- WebSocket -------------------------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        agent = await require_agent(request, self._pool, request.match_info["id"])
        ws = web.WebSocketResponse(heartbeat=self._settings.heartbeat_interval_s, max_msg_size=MAX_FRAME)
        await ws.prepare(request)
        session = DesktopSession(agent.id, ws)
        try:
            await self._actions.heartbeat(agent)
            await self._resume(session)
            self._hub.register(session)
            await self._hub.pump(session)  # whatever was appended between the snapshot and registering
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    await self._on_text(session, msg.data)
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    await session.send(
                        {"type": "error", "error": "invalid_frame", "reason": "send JSON text frames"}
                    )
        except (ConnectionError, RuntimeError) as exc:
            log.info("desktop connection ended", extra={"agent_id": agent.id, "error": str(exc)})
        finally:
            self._hub.unregister(session)
            with contextlib.suppress(Exception):
                await ws.close()
        return ws

    async def _resume(self, session: DesktopSession) -> None:
        async with session.lock:
            seq, frames = await self._actions.snapshot(session.agent_id)
            for frame in frames:
                await session.send(frame)
            session.last_seq = max(session.last_seq, seq)

    async def _on_text(self, session: DesktopSession, data: str) -> None:
        ref: Any = None
        try:
            raw = orjson.loads(data)
            if not isinstance(raw, dict):
                raise ValueError("not an object")
            ref = raw.get("ref")
        except (orjson.JSONDecodeError, ValueError):
            await session.send(
                {"type": "error", "error": "invalid_json", "reason": "frames are JSON objects"}
            )
            return
        try:
            command = CLIENT_COMMANDS.validate_python(raw)
        except ValidationError as exc:
            await session.send(
                {"type": "error", "error": "invalid_request", "reason": validation_reason(exc), "ref": ref}
            )
            return
        async with self._pool.acquire() as conn:
            agent = await repo.get_agent(conn, session.agent_id)
        if agent is None or not agent.record.enabled:
            await session.send(
                {"type": "error", "error": "agent_disabled", "reason": "this agent is disabled"}
            )
            await session.ws.close(code=4001, message=b"agent_disabled")
            return
        try:
            if isinstance(command, ResumeCommand):
                await self._resume(session)
                result: dict[str, Any] = {}
            else:
                result = await self._execute(agent, command)
        except ActionError as exc:
            metrics.COMMANDS.labels(command.type, exc.code).inc()
            await session.send(
                {
                    "type": "error",
                    "error": exc.code,
                    "reason": exc.reason,
                    "ref": ref,
                    "command": command.type,
                }
            )
            return
        metrics.COMMANDS.labels(command.type, "ok").inc()
        await session.send({**result, "type": "ack", "command": command.type, "ref": ref})
