"""Replies from agents and bots to customers (agent-presence -> channel-gateway), and their fate."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from omnirouter_shared.contracts.common import Address, Attachment, Channel, Model, Vendor


class ReplyPurpose(StrEnum):
    #: A reply inside a conversation the customer started: always allowed.
    SERVICE = "service"
    #: Offers, promotions, proactive contact: refused to opted-out addresses.
    MARKETING = "marketing"


class ReplyRequested(Model):
    TYPE: ClassVar[str] = "reply.requested"
    VERSION: ClassVar[int] = 1

    reply_id: str
    customer_id: str
    conversation_id: str | None = None
    task_id: str | None = None
    author: str  # agent:<id>, bot:<id>, system
    channel: Channel
    to: Address
    from_: Address | None = None
    subject: str | None = None
    text: str
    attachments: tuple[Attachment, ...] = ()
    purpose: ReplyPurpose = ReplyPurpose.SERVICE
    in_reply_to: str | None = None  # email threading: the Message-ID answered
    #: The vendor to send through; None lets the gateway pick its default for the channel.
    vendor: Vendor | None = None


class DeliveryState(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    REFUSED_OPT_OUT = "refused_opt_out"
    DEAD_LETTERED = "dead_lettered"


class ReplyDeliveryStatus(Model):
    TYPE: ClassVar[str] = "reply.delivery_status"
    VERSION: ClassVar[int] = 1

    reply_id: str
    customer_id: str
    channel: Channel
    to: Address
    state: DeliveryState
    vendor_message_id: str | None = None
    attempts: int = 1
    error: str | None = None
    occurred_at: datetime
    text: str | None = None
