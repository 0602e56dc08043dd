"""Mailgun ``/v3/{domain}/messages``: a form post with basic auth ``api:<key>``."""

from __future__ import annotations

import aiohttp

from omnirouter_gateway.outbound.base import PermanentFailure, Sent
from omnirouter_gateway.outbound.email_common import Mailbox, sender, subject, threading_headers
from omnirouter_gateway.outbound.http import call, refuse, with_links
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


class MailgunSender:
    vendor = Vendor.MAILGUN
    channels = frozenset({Channel.EMAIL})

    def __init__(self, settings: GatewaySettings) -> None:
        key = settings.mailgun_api_key
        self._key = key.get_secret_value() if key is not None else None
        self._domain = settings.mailgun_domain
        self._base = settings.mailgun_api_url
        self._from = settings.email_from
        self._from_name = settings.email_from_name
        self._timeout_s = settings.delivery_timeout_s

    def configured(self) -> bool:
        return bool(self._key and self._domain)

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent:
        if not self._key or not self._domain:
            raise PermanentFailure("mailgun: MAILGUN_API_KEY/MAILGUN_DOMAIN are not set")
        mailbox = sender(reply, self._from, self._from_name, "mailgun")
        to = Mailbox(reply.to.value, reply.to.display_name)
        form: list[tuple[str, str]] = [
            ("from", mailbox.header()),
            ("to", to.header()),
            ("subject", subject(reply)),
            ("text", with_links(reply.text, (a.url for a in reply.attachments))),
            # Comes back in Mailgun's event webhooks as user-variables, linking receipts to the reply.
            ("v:reply_id", reply.reply_id),
        ]
        form.extend((f"h:{name}", value) for name, value in threading_headers(reply).items())
        answer = await call(
            http,
            f"{self._base}/v3/{self._domain}/messages",
            vendor="mailgun",
            timeout_s=self._timeout_s,
            secrets=(self._key,),
            auth=aiohttp.BasicAuth("api", self._key),
            data=form,
        )
        body = answer.json()
        if answer.status >= 300 or not isinstance(body, dict) or not body.get("id"):
            raise refuse("mailgun", answer, (self._key,))
        return Sent(str(body["id"]))
