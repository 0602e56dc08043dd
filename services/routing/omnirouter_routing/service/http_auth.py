"""Bearer tokens for /v1: the admin token for everything, system tokens (OMNI_API_TOKENS) for reading."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Middleware

from omnirouter_shared.http.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Role(StrEnum):
    ADMIN = "admin"
    SYSTEM = "system"


ROLE = web.RequestKey("routing_role", Role)


def _matches(presented: str, secrets: Sequence[str]) -> bool:
    # Compare with every token (no early exit) so the timing does not tell which one is close.
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(presented.encode(), secret.encode())
    return found


def auth_middleware(admin_token: str, api_tokens: Sequence[str]) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(
                401,
                "unauthorized",
                "send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if _matches(token, [admin_token]):
            request[ROLE] = Role.ADMIN
        elif _matches(token, api_tokens):
            request[ROLE] = Role.SYSTEM
        else:
            raise ApiError(401, "unauthorized", "unknown token", headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return middleware


def require_admin(request: web.Request) -> None:
    if request.get(ROLE) is not Role.ADMIN:
        raise ApiError(403, "forbidden", "this operation needs the admin token")
