"""Request parsing shared by the REST handlers: JSON bodies validated with pydantic, errors as JSON."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from omnirouter_presence.actions import ActionError
from omnirouter_shared.http.errors import ApiError

M = TypeVar("M", bound=BaseModel)

MAX_BODY = 256 * 1024


def validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


async def read_json(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"the body is larger than {MAX_BODY} bytes")
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "invalid_json", "a JSON object body is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return data


def parse(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, "invalid_request", validation_reason(exc)) from None


def api_error(exc: ActionError) -> ApiError:
    return ApiError(exc.status, exc.code, exc.reason)
