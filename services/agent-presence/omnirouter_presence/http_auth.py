"""Who is calling: the admin (OMNI_ADMIN_TOKEN) or one agent (its own token, for its own URLs only).

Browsers cannot set headers on a WebSocket, so agent URLs also take ``?token=``. Every comparison is
constant-time; a missing token is 401, a token that is valid but for another agent is 403 as well as a
wrong token for an existing agent (so the answer never tells which agent ids exist).
"""

from __future__ import annotations

import hmac

import asyncpg
from aiohttp import web

from omnirouter_presence import repository as repo
from omnirouter_presence.domain.roster import token_matches
from omnirouter_shared.http.errors import ApiError


def bearer(request: web.Request, *, allow_query: bool = False) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if allow_query:
        token = request.query.get("token")
        if token:
            return token
    return None


def _unauthorized(reason: str) -> ApiError:
    return ApiError(
        401, "unauthorized", reason, headers={"WWW-Authenticate": 'Bearer realm="agent-presence"'}
    )


def require_admin(request: web.Request, admin_token: str) -> None:
    token = bearer(request)
    if token is None:
        raise _unauthorized("an admin bearer token is required")
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise ApiError(403, "forbidden", "this endpoint needs the admin token")


async def require_agent(request: web.Request, pool: asyncpg.Pool, agent_id: str) -> repo.AgentRow:
    token = bearer(request, allow_query=True)
    if token is None:
        raise _unauthorized("the agent's bearer token is required")
    async with pool.acquire() as conn:
        agent = await repo.get_agent(conn, agent_id)
    if agent is None or not token_matches(token, agent.token_hash):
        raise ApiError(403, "forbidden", "this token does not grant access to this agent")
    if not agent.record.enabled:
        raise ApiError(403, "agent_disabled", "this agent is disabled")
    return agent
