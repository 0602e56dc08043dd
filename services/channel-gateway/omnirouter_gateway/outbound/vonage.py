"""Vonage Messages API ``/v1/messages``: SMS and WhatsApp text with basic auth ``key:secret``."""

from __future__ import annotations

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent
from omnirouter_gateway.outbound.http import call, refuse, with_links
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


def vonage_number(value: str) -> str:
    """Vonage wants E.164 without the leading ``+``."""
    return value.strip().lstrip("+")


class VonageSender:
    vendor = Vendor.VONAGE
    channels = frozenset({Channel.SMS, Channel.WHATSAPP})

    def __init__(self, settings: GatewaySettings) -> None:
        self._key = settings.vonage_api_key.get_secret_value() if settings.vonage_api_key else None
        secret = settings.vonage_api_secret
        self._secret = secret.get_secret_value() if secret is not None else None
        self._url = f"{settings.vonage_api_url}/v1/messages"
        self._from = settings.vonage_from
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._key and self._secret)

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self._key or not self._secret:
            raise PermanentFailure("vonage: VONAGE_API_KEY/VONAGE_API_SECRET are not set")
        sender = reply.from_.value if reply.from_ is not None else self._from
        if not sender:
            raise PermanentFailure("vonage: the reply has no sender and VONAGE_FROM is not set")
        body = {
            "channel": reply.channel.value,
            "message_type": "text",
            "text": with_links(reply.text, (a.url for a in reply.attachments)),
            "to": vonage_number(reply.to.value),
            "from": vonage_number(sender),
            # Echoed on Vonage's status webhooks, linking receipts to the reply.
            "client_ref": reply.reply_id[:100],
        }
        secrets = (self._key, self._secret)
        answer = await call(
            http,
            self._url,
            vendor="vonage",
            timeout_s=self._timeout_s,
            secrets=secrets,
            auth=aiohttp.BasicAuth(self._key, self._secret),
            json=body,
        )
        data = answer.json()
        if answer.status >= 300 or not isinstance(data, dict) or not data.get("message_uuid"):
            raise refuse("vonage", answer, secrets)
        return Sent(str(data["message_uuid"]))
