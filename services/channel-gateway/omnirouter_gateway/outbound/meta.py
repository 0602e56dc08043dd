"""Meta's Graph API: WhatsApp Cloud API messages, and the Send API for Messenger and Instagram."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent, TransientFailure
from omnirouter_gateway.outbound.http import Answer, call, error_text, with_links
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested

#: Graph error codes that mean "slow down" or "try again" although Meta answers them with HTTP 400:
#: app/user/page rate limits (4, 17, 32, 613, 80007), WhatsApp throughput and pair limits (130429,
#: 131056), and the generic temporary errors (1, 2, 131000).
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 613, 80007, 130429, 131000, 131056})


class MetaSender:
    vendor = Vendor.META
    channels = frozenset({Channel.WHATSAPP, Channel.MESSENGER, Channel.INSTAGRAM})

    def __init__(self, settings: GatewaySettings) -> None:
        token = settings.meta_access_token
        self._token = token.get_secret_value() if token is not None else None
        self._base = settings.meta_graph_url
        self._phone_number_id = settings.meta_phone_number_id
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._token)

    def _whatsapp(self, reply: ReplyRequested) -> tuple[str, dict[str, Any]]:
        # The inbound adapter scopes the business number by its phone number id (the namespace).
        number_id = reply.from_.namespace if reply.from_ is not None else None
        number_id = number_id or self._phone_number_id
        if not number_id:
            raise PermanentFailure("meta: the reply has no sender and META_PHONE_NUMBER_ID is not set")
        body = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": reply.to.value.lstrip("+"),
            "type": "text",
            "text": {
                "body": with_links(reply.text, (a.url for a in reply.attachments)),
                "preview_url": False,
            },
        }
        return f"{self._base}/{number_id}/messages", body

    def _send_api(self, reply: ReplyRequested) -> tuple[str, dict[str, Any]]:
        # RESPONSE: a reply inside the 24-hour window the customer's own message opened.
        body = {
            "recipient": {"id": reply.to.value},
            "messaging_type": "RESPONSE",
            "message": {"text": with_links(reply.text, (a.url for a in reply.attachments))},
        }
        return f"{self._base}/me/messages", body

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self._token:
            raise PermanentFailure("meta: META_ACCESS_TOKEN is not set")
        url, body = self._whatsapp(reply) if reply.channel is Channel.WHATSAPP else self._send_api(reply)
        answer = await call(
            http,
            url,
            vendor="meta",
            timeout_s=self._timeout_s,
            secrets=(self._token,),
            headers={"Authorization": f"Bearer {self._token}"},
            json=body,
        )
        data = answer.json()
        if answer.status >= 400 or not isinstance(data, dict):
            raise self._failure(answer, data)
        if reply.channel is Channel.WHATSAPP:
            messages = data.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            if isinstance(first, dict) and first.get("id"):
                return Sent(str(first["id"]))
        elif data.get("message_id"):
            return Sent(str(data["message_id"]))
        raise PermanentFailure(f"meta: no message id in the answer {error_text(answer, (self._token,))}")

    def _failure(self, answer: Answer, data: Any) -> Exception:
        text = f"meta: HTTP {answer.status} {error_text(answer, (self._token,))}".rstrip()
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict) and (error.get("code") in TRANSIENT_CODES or error.get("is_transient")):
            return TransientFailure(text)
        return PermanentFailure(text)
