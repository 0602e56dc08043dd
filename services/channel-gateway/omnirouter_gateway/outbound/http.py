"""One HTTP call to a vendor's send API, turned into an answer or a classified failure.

Every sender goes through ``call`` so that timeouts, connection errors, 429/5xx and Retry-After mean
the same thing for every vendor, and so that no secret (a bot token in a URL path, a key in an error
message) ever reaches a log line or a status event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict

from omnirouter_gateway.outbound.base import PermanentFailure, TransientFailure

#: 408 and 425 are the client being too slow or too early: the same request may succeed later.
RETRYABLE_4XX = frozenset({408, 425, 429})
MAX_ERROR_TEXT = 300


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


class RetryableAnswer(TransientFailure):
    """A 408/425/429/5xx answer, kept so a sender can read a vendor-specific wait from its body."""

    def __init__(self, reason: str, retry_after_s: float | None, answer: Answer) -> None:
        super().__init__(reason, retry_after_s)
        self.answer = answer


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    return text


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date); None when absent or unreadable."""
    raw = headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


async def call(
    http: aiohttp.ClientSession,
    url: str,
    *,
    vendor: str,
    timeout_s: float,
    secrets: Iterable[str | None],
    auth: aiohttp.BasicAuth | None = None,
    headers: Mapping[str, str] | None = None,
    json: Any = None,
    data: Any = None,
) -> Answer:
    """POST once. Returns 2xx answers and, for the sender to interpret, 4xx answers other than the
    retryable ones; raises TransientFailure for network trouble, timeouts, 408/425/429 and 5xx."""
    hidden = list(secrets)
    sent_headers = dict(headers or {})
    if json is not None:
        sent_headers["Content-Type"] = "application/json"
        data = orjson.dumps(json)
    try:
        async with http.post(
            url,
            auth=auth,
            headers=sent_headers,
            data=data,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as resp:
            body = await resp.read()
            answer = Answer(resp.status, CIMultiDict(resp.headers), body)
    except TimeoutError as exc:
        raise TransientFailure(f"{vendor}: no answer within {timeout_s:g} s") from exc
    except aiohttp.ClientError as exc:
        # Connection errors name the host, never the path; redact anyway (Telegram's path is the token).
        raise TransientFailure(redact(f"{vendor}: {type(exc).__name__}: {exc}", hidden)) from exc
    if answer.status in RETRYABLE_4XX or answer.status >= 500:
        raise RetryableAnswer(
            f"{vendor}: HTTP {answer.status} {error_text(answer, hidden)}".rstrip(),
            retry_after(answer.headers),
            answer,
        )
    return answer


def error_text(answer: Answer, secrets: Iterable[str | None]) -> str:
    text = answer.body[:MAX_ERROR_TEXT].decode("utf-8", "replace").strip()
    return redact(text, secrets)


def refuse(vendor: str, answer: Answer, secrets: Iterable[str | None]) -> PermanentFailure:
    return PermanentFailure(f"{vendor}: HTTP {answer.status} {error_text(answer, secrets)}".rstrip())


def with_links(text: str, urls: Iterable[str]) -> str:
    """Channels whose send call carries no media by URL get the attachments' links in the text."""
    links = [u for u in urls if u]
    if not links:
        return text
    return "\n".join([text, *links]) if text else "\n".join(links)
