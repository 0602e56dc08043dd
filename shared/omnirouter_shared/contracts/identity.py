"""Events published by identity-resolution."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field

from omnirouter_shared.contracts.common import Address, Channel, Model
from omnirouter_shared.contracts.interactions import InteractionReceived, InteractionStatusChanged


class TimelineItem(Model):
    """A short, agent-facing summary of one past interaction, offer or promotion."""

    entry_id: str
    occurred_at: datetime
    channel: Channel | None = None
    direction: Literal["inbound", "outbound", "note"]
    kind: str  # message, call, offer, promotion, delivery, purchase, ...
    summary: str = Field(max_length=2000)
    source: str  # gateway, agent:<id>, crm, store, campaign:<id>, ...


class CustomerSummary(Model):
    customer_id: str
    display_name: str | None = None
    preferred_channel: Channel | None = None
    is_new: bool = False


class InteractionResolved(Model):
    """An inbound interaction with the customer it belongs to (identity-resolution -> routing)."""

    TYPE: ClassVar[str] = "interaction.resolved"
    VERSION: ClassVar[int] = 1

    customer: CustomerSummary
    interaction: InteractionReceived
    #: The latest interactions on any channel, newest first, so the agent continues where the last
    #: contact ended (what was promised by email is visible on the phone).
    recent_history: tuple[TimelineItem, ...] = ()


class InteractionStatusResolved(Model):
    """A status change (call answered/abandoned, delivery receipt) with its customer."""

    TYPE: ClassVar[str] = "interaction.status_resolved"
    VERSION: ClassVar[int] = 1

    customer_id: str
    status: InteractionStatusChanged


class CustomersMerged(Model):
    """Profiles were merged: ``merged_ids`` now alias ``survivor_id``. Routing folds their open
    conversations together; ``merge_id`` makes the fold idempotent."""

    TYPE: ClassVar[str] = "customer.merged"
    VERSION: ClassVar[int] = 1

    merge_id: str
    survivor_id: str
    merged_ids: tuple[str, ...]
    reason: str


class CustomerSplit(Model):
    """A wrong merge was undone: ``restored_id`` lives again with the identifiers listed."""

    TYPE: ClassVar[str] = "customer.split"
    VERSION: ClassVar[int] = 1

    split_id: str
    survivor_id: str
    restored_id: str
    identifier_keys: tuple[str, ...]


class CustomerErased(Model):
    """GDPR erasure: every service drops what it holds about the customer."""

    TYPE: ClassVar[str] = "customer.erased"
    VERSION: ClassVar[int] = 1

    customer_id: str
    erased_at: datetime


def consent_key(address_key: str, channel: str | None) -> str:
    """The compacted topic's key: one per address *and* channel (``*`` = every channel), so a
    compaction keeps the latest fact of each channel, not only of the address."""
    return f"{address_key}|{channel or '*'}"


def split_consent_key(key: str) -> tuple[str, str | None]:
    """(address key, channel or ``*``); a key without a channel part (version 1 producers) names every
    row of the address (channel ``None``)."""
    address, sep, channel = key.rpartition("|")
    return (address, channel) if sep else (key, None)


class ConsentChanged(Model):
    """Consent per address and channel (compacted topic keyed by the address key)."""

    TYPE: ClassVar[str] = "consent.changed"
    VERSION: ClassVar[int] = 1

    customer_id: str
    address: Address
    channel: Channel | None = None  # None: every channel
    opted_out: bool
    reason: str  # "STOP keyword", "unsubscribe", "agent recorded", ...
    changed_at: datetime
