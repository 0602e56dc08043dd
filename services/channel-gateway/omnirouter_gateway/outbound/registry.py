"""Which sender delivers a reply: the vendor the reply names, else the channel's default vendor, else
any configured sender that serves the channel. Pure once the senders are built."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from omnirouter_gateway.outbound.base import PermanentFailure, Sender
from omnirouter_gateway.outbound.mailgun import MailgunSender
from omnirouter_gateway.outbound.meta import MetaSender
from omnirouter_gateway.outbound.sendgrid import SendGridSender
from omnirouter_gateway.outbound.telegram import TelegramSender
from omnirouter_gateway.outbound.twilio import TwilioSender
from omnirouter_gateway.outbound.vonage import VonageSender
from omnirouter_gateway.outbound.webchat import WebchatSender
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


def build_senders(settings: GatewaySettings, pool: asyncpg.Pool | None = None) -> list[Sender]:
    """Every sender the gateway knows, configured or not (order = fallback preference). ``pool`` is the
    gateway's own: web chat replies are rows in its database."""
    return [
        TwilioSender(settings),
        MetaSender(settings),
        SendGridSender(settings),
        MailgunSender(settings),
        VonageSender(settings),
        TelegramSender(settings),
        WebchatSender(settings, pool),
    ]


def parse_channel_vendors(text: str) -> dict[Channel, Vendor]:
    """``"sms=twilio,email=sendgrid"`` -> {Channel.SMS: Vendor.TWILIO, ...}; errors name the variable."""
    pairs: dict[Channel, Vendor] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        channel, _, vendor = (part.strip() for part in item.partition("="))
        try:
            pairs[Channel(channel)] = Vendor(vendor)
        except ValueError:
            raise ValueError(
                f"GATEWAY_CHANNEL_VENDORS: {item.strip()!r} is not <channel>=<vendor> "
                f"(channels: {', '.join(c.value for c in Channel)}; "
                f"vendors: {', '.join(v.value for v in Vendor)})"
            ) from None
    return pairs


def choose_sender(
    reply: ReplyRequested, senders: Sequence[Sender], channel_vendors: Mapping[Channel, Vendor]
) -> Sender:
    """The sender for ``reply``; PermanentFailure (with the reason for the status event) if none."""
    channel = reply.channel
    if reply.vendor is not None:
        for sender in senders:
            if sender.vendor is reply.vendor:
                if channel not in sender.channels:
                    raise PermanentFailure(f"vendor {reply.vendor.value} does not deliver {channel.value}")
                if not sender.configured():
                    raise PermanentFailure(f"vendor {reply.vendor.value} is not configured")
                return sender
        raise PermanentFailure(f"no sender for vendor {reply.vendor.value}")
    serving = [s for s in senders if channel in s.channels and s.configured()]
    preferred = channel_vendors.get(channel)
    for sender in serving:
        if sender.vendor is preferred:
            return sender
    if serving:
        return serving[0]
    raise PermanentFailure(f"no configured sender delivers {channel.value}")
