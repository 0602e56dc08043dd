"""Carrier-style opt-out and opt-in keywords (CTIA / Twilio conventions) on SMS and WhatsApp."""

from __future__ import annotations

from dataclasses import dataclass

from omnirouter_shared.contracts.common import Channel

OPT_OUT = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
OPT_IN = frozenset({"START", "UNSTOP"})
KEYWORD_CHANNELS = frozenset({Channel.SMS, Channel.MMS, Channel.WHATSAPP})


@dataclass(frozen=True, slots=True)
class ConsentKeyword:
    opted_out: bool
    #: None: every channel (STOPALL); otherwise the channel the keyword arrived on.
    channel: Channel | None
    reason: str


def detect(channel: Channel, text: str | None) -> ConsentKeyword | None:
    """A message that is exactly a keyword (any case, surrounding spaces and punctuation ignored)."""
    if channel not in KEYWORD_CHANNELS or not text:
        return None
    word = text.strip().strip(".!").strip().upper()
    if word in OPT_OUT:
        scope = None if word == "STOPALL" else (Channel.SMS if channel is Channel.MMS else channel)
        return ConsentKeyword(True, scope, f"{word} keyword")
    if word in OPT_IN:
        return ConsentKeyword(False, Channel.SMS if channel is Channel.MMS else channel, f"{word} keyword")
    return None
