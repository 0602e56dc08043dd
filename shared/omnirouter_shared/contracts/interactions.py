"""Interactions entering the suite from a channel (gateway -> identity-resolution)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field

from omnirouter_shared.contracts.common import Address, Attachment, Channel, Model, ThreadRef, Vendor

_INTERACTION_NS = uuid.UUID("6f1d3c2e-9a51-4f7b-8f0e-2b8c0f4e7a10")


def interaction_id_for(vendor: Vendor | str, vendor_message_id: str) -> str:
    """The interaction id is derived from the vendor's own id, so a redelivery gets the same id
    and every consumer downstream can deduplicate on it."""
    return str(uuid.uuid5(_INTERACTION_NS, f"{vendor}:{vendor_message_id}"))


class InteractionKind(StrEnum):
    MESSAGE = "message"
    CALL = "call"


class InteractionReceived(Model):
    """The one canonical event for an inbound contact on any channel (a message, or a call starting)."""

    TYPE: ClassVar[str] = "interaction.received"
    VERSION: ClassVar[int] = 1

    interaction_id: str
    kind: InteractionKind = InteractionKind.MESSAGE
    channel: Channel
    vendor: Vendor
    vendor_message_id: str = Field(min_length=1, max_length=512)
    sender: Address
    recipient: Address
    #: Further identifiers the contact carried (a logged-in web-chat visitor's CRM id, a typed email).
    claimed_identifiers: tuple[Address, ...] = ()
    subject: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sent_at: datetime | None = None
    received_at: datetime
    thread: ThreadRef = ThreadRef()
    #: The vendor's fields as received, kept apart and never interpreted downstream.
    vendor_fields: dict[str, Any] = Field(default_factory=dict)


class InteractionStatus(StrEnum):
    # calls
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    # outbound messages (delivery receipts)
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


class InteractionStatusChanged(Model):
    """A vendor told us an interaction changed state (call answered/ended, message delivered/read)."""

    TYPE: ClassVar[str] = "interaction.status_changed"
    VERSION: ClassVar[int] = 1

    interaction_id: str
    direction: Literal["inbound", "outbound"] = "inbound"
    channel: Channel
    vendor: Vendor
    vendor_message_id: str
    #: The customer's address (the caller, or the recipient of an outbound message).
    customer_address: Address
    status: InteractionStatus
    occurred_at: datetime
    error: str | None = None
    vendor_fields: dict[str, Any] = Field(default_factory=dict)
