"""Twilio Programmable Messaging: SMS, MMS and WhatsApp through one ``Messages.json`` call."""

from __future__ import annotations

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent
from omnirouter_gateway.outbound.http import call, refuse
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested

#: Twilio's own limit on media per message.
MAX_MEDIA = 10


def twilio_address(address: Address, channel: Channel) -> str:
    """WhatsApp numbers travel as ``whatsapp:+<E.164>``; phones as they are (E.164)."""
    if channel is Channel.WHATSAPP:
        return f"whatsapp:+{address.value.lstrip('+')}"
    return address.value


class TwilioSender:
    vendor = Vendor.TWILIO
    channels = frozenset({Channel.SMS, Channel.MMS, Channel.WHATSAPP})

    def __init__(self, settings: GatewaySettings) -> None:
        self._sid = settings.twilio_account_sid
        token = settings.twilio_auth_token
        self._token = token.get_secret_value() if token is not None else None
        self._base = settings.twilio_api_url
        self._from_number = settings.twilio_from_number
        self._whatsapp_from = settings.twilio_whatsapp_from
        # Delivery receipts come back through the gateway's own signed webhook.
        self._status_callback = f"{settings.public_url}/webhooks/twilio/messaging"
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._sid and self._token)

    def _sender(self, reply: ReplyRequested) -> str:
        if reply.from_ is not None and reply.from_.kind in (AddressKind.PHONE, AddressKind.WHATSAPP):
            return twilio_address(reply.from_, reply.channel)
        configured = self._whatsapp_from if reply.channel is Channel.WHATSAPP else self._from_number
        if not configured:
            var = "TWILIO_WHATSAPP_FROM" if reply.channel is Channel.WHATSAPP else "TWILIO_FROM_NUMBER"
            raise PermanentFailure(f"twilio: the reply has no sender and {var} is not set")
        return twilio_address(Address(kind=AddressKind.PHONE, value=configured), reply.channel)

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self.configured():
            raise PermanentFailure("twilio: TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN are not set")
        assert self._sid is not None and self._token is not None
        if len(reply.attachments) > MAX_MEDIA:
            raise PermanentFailure(f"twilio: at most {MAX_MEDIA} attachments per message")
        form: list[tuple[str, str]] = [
            ("To", twilio_address(reply.to, reply.channel)),
            ("From", self._sender(reply)),
            ("StatusCallback", self._status_callback),
        ]
        if reply.text:
            form.append(("Body", reply.text))
        form.extend(("MediaUrl", a.url) for a in reply.attachments)
        answer = await call(
            http,
            f"{self._base}/2010-04-01/Accounts/{self._sid}/Messages.json",
            vendor="twilio",
            timeout_s=self._timeout_s,
            secrets=(self._token,),
            auth=aiohttp.BasicAuth(self._sid, self._token),
            data=form,
        )
        body = answer.json()
        if answer.status >= 400 or not isinstance(body, dict) or not body.get("sid"):
            raise refuse("twilio", answer, (self._token,))
        return Sent(str(body["sid"]))
