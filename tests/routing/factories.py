"""Builders of the contract payloads fed to the routing core in tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from omnirouter_shared.contracts.agents import AgentKind, AgentStatus, AgentStatusChanged, AgentUpserted
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.identity import (
    CustomerSummary,
    InteractionResolved,
    InteractionStatusResolved,
)
from omnirouter_shared.contracts.interactions import (
    InteractionKind,
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
)

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


_ADDRESS_KIND = {
    Channel.VOICE: AddressKind.PHONE,
    Channel.SMS: AddressKind.PHONE,
    Channel.WHATSAPP: AddressKind.WHATSAPP,
    Channel.EMAIL: AddressKind.EMAIL,
    Channel.WEBCHAT: AddressKind.WEBCHAT,
}


def interaction(
    customer: str,
    interaction_id: str,
    channel: Channel = Channel.WEBCHAT,
    text: str | None = "hello",
    subject: str | None = None,
    when: datetime = T0,
) -> InteractionResolved:
    kind = _ADDRESS_KIND.get(channel, AddressKind.WEBCHAT)
    return InteractionResolved(
        customer=CustomerSummary(customer_id=customer),
        interaction=InteractionReceived(
            interaction_id=interaction_id,
            kind=InteractionKind.CALL if channel is Channel.VOICE else InteractionKind.MESSAGE,
            channel=channel,
            vendor=Vendor.INTERNAL,
            vendor_message_id=interaction_id,
            sender=Address(kind=kind, value=f"{customer}-addr"),
            recipient=Address(kind=kind, value="business"),
            subject=subject,
            text=text,
            received_at=when,
        ),
    )


def call_ended(
    customer: str, interaction_id: str, status: InteractionStatus = InteractionStatus.ABANDONED
) -> InteractionStatusResolved:
    return InteractionStatusResolved(
        customer_id=customer,
        status=InteractionStatusChanged(
            interaction_id=interaction_id,
            channel=Channel.VOICE,
            vendor=Vendor.INTERNAL,
            vendor_message_id=interaction_id,
            customer_address=Address(kind=AddressKind.PHONE, value=f"{customer}-addr"),
            status=status,
            occurred_at=T0,
        ),
    )


def agent(
    agent_id: str,
    skills: dict[str, int] | None = None,
    capacity: dict[Channel, int] | None = None,
    kind: AgentKind = AgentKind.HUMAN,
    enabled: bool = True,
) -> AgentUpserted:
    return AgentUpserted(
        agent_id=agent_id,
        name=agent_id,
        kind=kind,
        skills=skills or {},
        capacity=capacity if capacity is not None else {c: 3 for c in Channel} | {Channel.VOICE: 1},
        enabled=enabled,
    )


def status(agent_id: str, value: AgentStatus = AgentStatus.AVAILABLE) -> AgentStatusChanged:
    return AgentStatusChanged(agent_id=agent_id, status=value)
