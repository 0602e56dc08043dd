"""Telegram Bot API ``sendMessage``. The bot token is part of the URL path: it is redacted from every
reason this sender reports."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent, TransientFailure
from omnirouter_gateway.outbound.http import (
    RETRYABLE_4XX,
    Answer,
    RetryableAnswer,
    call,
    error_text,
    with_links,
)
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


class TelegramSender:
    vendor = Vendor.TELEGRAM
    channels = frozenset({Channel.TELEGRAM})

    def __init__(self, settings: GatewaySettings) -> None:
        token = settings.telegram_bot_token
        self._token = token.get_secret_value() if token is not None else None
        self._base = settings.telegram_api_url
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._token)

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self._token:
            raise PermanentFailure("telegram: TELEGRAM_BOT_TOKEN is not set")
        chat_id = reply.to.value
        try:
            answer = await call(
                http,
                f"{self._base}/bot{self._token}/sendMessage",
                vendor="telegram",
                timeout_s=self._timeout_s,
                secrets=(self._token,),
                json={
                    "chat_id": int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id,
                    "text": with_links(reply.text, (a.url for a in reply.attachments)),
                },
            )
        except RetryableAnswer as exc:
            # Telegram's 429 carries its wait in the body (parameters.retry_after), not in a header.
            wait = _body_retry_after(exc.answer.json())
            if wait is None:
                raise
            raise TransientFailure(exc.reason, wait) from exc
        data = answer.json()
        if answer.status >= 300 or not isinstance(data, dict) or not data.get("ok"):
            raise self._failure(answer, data)
        result = data.get("result")
        if not isinstance(result, dict) or "message_id" not in result:
            raise PermanentFailure("telegram: no message_id in the answer")
        # message_id is only unique within its chat.
        return Sent(f"{chat_id}:{result['message_id']}")

    def _failure(self, answer: Answer, data: Any) -> Exception:
        text = f"telegram: HTTP {answer.status} {error_text(answer, (self._token,))}".rstrip()
        if answer.status in RETRYABLE_4XX:
            return TransientFailure(text)
        return PermanentFailure(text)


def _body_retry_after(data: Any) -> float | None:
    params = data.get("parameters") if isinstance(data, dict) else None
    wait = params.get("retry_after") if isinstance(params, dict) else None
    return float(wait) if isinstance(wait, int | float) else None
