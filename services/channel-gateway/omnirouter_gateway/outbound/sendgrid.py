"""SendGrid v3 ``mail/send``: one JSON request per reply; the message id comes back as a header."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent
from omnirouter_gateway.outbound.email_common import sender, subject, threading_headers
from omnirouter_gateway.outbound.http import call, refuse, with_links
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


class SendGridSender:
    vendor = Vendor.SENDGRID
    channels = frozenset({Channel.EMAIL})

    def __init__(self, settings: GatewaySettings) -> None:
        key = settings.sendgrid_api_key
        self._key = key.get_secret_value() if key is not None else None
        self._url = f"{settings.sendgrid_api_url}/v3/mail/send"
        self._from = settings.email_from
        self._from_name = settings.email_from_name
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._key)

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self._key:
            raise PermanentFailure("sendgrid: SENDGRID_API_KEY is not set")
        mailbox = sender(reply, self._from, self._from_name, "sendgrid")
        to: dict[str, str] = {"email": reply.to.value}
        if reply.to.display_name:
            to["name"] = reply.to.display_name
        sender_json: dict[str, str] = {"email": mailbox.email}
        if mailbox.name:
            sender_json["name"] = mailbox.name
        body: dict[str, Any] = {
            "personalizations": [{"to": [to]}],
            "from": sender_json,
            "subject": subject(reply),
            "content": [
                {"type": "text/plain", "value": with_links(reply.text, (a.url for a in reply.attachments))}
            ],
            # Comes back on SendGrid's event webhook, linking receipts to the reply.
            "custom_args": {"reply_id": reply.reply_id},
        }
        headers = threading_headers(reply)
        if headers:
            body["headers"] = headers
        answer = await call(
            http,
            self._url,
            vendor="sendgrid",
            timeout_s=self._timeout_s,
            secrets=(self._key,),
            headers={"Authorization": f"Bearer {self._key}"},
            json=body,
        )
        if answer.status >= 300:
            raise refuse("sendgrid", answer, (self._key,))
        # 202 with an empty body; the id is only in X-Message-Id.
        return Sent(answer.headers.get("X-Message-Id") or f"sendgrid:{reply.reply_id}")
