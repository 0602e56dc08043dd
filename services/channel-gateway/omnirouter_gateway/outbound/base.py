"""What every vendor sender implements. A sender makes one attempt; retries, backoff, opt-out checks,
idempotency and status events are the delivery loop's job, not the sender's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.replies import ReplyRequested


@dataclass(frozen=True)
class Sent:
    """The vendor accepted the message; its id links later delivery receipts to the reply."""

    vendor_message_id: str


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientFailure(DeliveryError):
    """Worth retrying: timeouts, connection errors, 429 and 5xx. ``retry_after_s`` honours the vendor."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class PermanentFailure(DeliveryError):
    """Retrying cannot help: 4xx other than 429, an address the channel cannot reach, bad config."""


class Sender(Protocol):
    vendor: Vendor
    channels: frozenset[Channel]

    def configured(self) -> bool: ...

    async def send(self, reply: ReplyRequested, http: aiohttp.ClientSession) -> Sent: ...
