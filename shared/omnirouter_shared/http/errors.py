"""Every error a client sees is JSON: ``{"error": "<code>", "reason": "<text for a human>"}``."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from omnirouter_shared.observability import metrics
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    503: "unavailable",
}


def json_error(
    status: int, error: str, reason: str, *, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": error, "reason": reason}, status=status, headers=headers)


class ApiError(web.HTTPException):
    """Raise from a handler to answer a JSON error."""

    def __init__(self, status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        super().__init__(
            text=web.json_response({"error": error, "reason": reason}).text,
            content_type="application/json",
            headers=headers,
        )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except ApiError as exc:
        status = exc.status
        raise
    except web.HTTPException as exc:
        status = exc.status
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        code = _CODES.get(exc.status, "error")
        reason = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
        return json_error(
            exc.status,
            code,
            reason or code,
            headers={
                k: v
                for k, v in exc.headers.items()
                if k.lower() in {"allow", "retry-after", "www-authenticate"}
            },
        )
    except Exception:
        log.exception("unhandled error", extra={"route": route})
        return json_error(500, "internal_error", "an unexpected error occurred; it has been logged")
    finally:
        metrics.HTTP_REQUESTS.labels(route, request.method, str(status)).inc()
        metrics.HTTP_LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
