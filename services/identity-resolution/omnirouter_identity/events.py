"""The events identity-resolution publishes, built as outbox rows with deterministic event ids."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from omnirouter_identity.store.graph import AppliedMerge
from omnirouter_identity.store.lifecycle import ErasureResult, SplitResult
from omnirouter_identity.store.outbox import OutboxEvent
from omnirouter_shared.contracts.common import Address, Channel
from omnirouter_shared.contracts.envelope import Envelope, new_envelope
from omnirouter_shared.contracts.identity import (
    ConsentChanged,
    CustomerErased,
    CustomersMerged,
    CustomerSplit,
    CustomerSummary,
    InteractionResolved,
    InteractionStatusResolved,
    TimelineItem,
    consent_key,
)
from omnirouter_shared.contracts.interactions import InteractionReceived, InteractionStatusChanged
from omnirouter_shared.topics import Topic

PRODUCER = "identity-resolution"
_EVENT_NS = uuid.UUID("3c0b8d56-2f7e-4a43-9a55-8e4f0f3a9b11")


def event_id(kind: str, source: str) -> str:
    """Deterministic per (kind, source): a replay re-emits the same id, which consumers deduplicate."""
    if kind == "resolved":
        # The contract fixed in docs/architecture: uuid5 of "resolved:" + interaction id.
        return str(uuid.uuid5(_EVENT_NS, f"resolved:{source}"))
    return str(uuid.uuid5(_EVENT_NS, f"{kind}:{source}"))


def _env(
    payload: object, *, eid: str, correlation_id: str | None, causation_id: str | None, domain: str
) -> Envelope:
    return new_envelope(
        payload,  # type: ignore[arg-type]
        producer=PRODUCER,
        correlation_id=correlation_id,
        causation_id=causation_id,
        routing_domain=domain,
        event_id=eid,
    )


def resolved(
    interaction: InteractionReceived,
    *,
    customer: CustomerSummary,
    history: Sequence[TimelineItem],
    inbound: Envelope,
) -> OutboxEvent:
    payload = InteractionResolved(customer=customer, interaction=interaction, recent_history=tuple(history))
    env = _env(
        payload,
        eid=event_id("resolved", interaction.interaction_id),
        correlation_id=inbound.correlation_id,
        causation_id=inbound.event_id,
        domain=inbound.routing_domain,
    )
    return OutboxEvent(Topic.ROUTING_INBOX, inbound.routing_domain, env)


def status_resolved(status: InteractionStatusChanged, *, customer_id: str, inbound: Envelope) -> OutboxEvent:
    env = _env(
        InteractionStatusResolved(customer_id=customer_id, status=status),
        eid=event_id("status-resolved", inbound.event_id),
        correlation_id=inbound.correlation_id,
        causation_id=inbound.event_id,
        domain=inbound.routing_domain,
    )
    return OutboxEvent(Topic.ROUTING_INBOX, inbound.routing_domain, env)


def merged(
    merge: AppliedMerge, *, domains: Sequence[str], correlation_id: str | None, causation_id: str | None
) -> list[OutboxEvent]:
    """One event per absorbed profile: to every routing domain holding the customer's work, and to the
    compacted profiles topic keyed by the absorbed id (its latest fact: "now lives at survivor")."""
    payload = CustomersMerged(
        merge_id=merge.merge_id,
        survivor_id=merge.survivor_id,
        merged_ids=(merge.absorbed_id,),
        reason=merge.reason,
    )
    out = [
        OutboxEvent(
            Topic.ROUTING_INBOX,
            domain,
            _env(
                payload,
                eid=event_id(f"merged:{domain}", merge.merge_id),
                correlation_id=correlation_id,
                causation_id=causation_id,
                domain=domain,
            ),
        )
        for domain in domains
    ]
    out.append(
        OutboxEvent(
            Topic.IDENTITY_PROFILES,
            merge.absorbed_id,
            _env(
                payload,
                eid=event_id("merged", merge.merge_id),
                correlation_id=correlation_id,
                causation_id=causation_id,
                domain=domains[0] if domains else "default",
            ),
        )
    )
    return out


def split(result: SplitResult, *, correlation_id: str | None = None) -> list[OutboxEvent]:
    payload = CustomerSplit(
        split_id=result.split_id,
        survivor_id=result.survivor_id,
        restored_id=result.restored_id,
        identifier_keys=result.identifier_keys,
    )
    out = [
        OutboxEvent(
            Topic.ROUTING_INBOX,
            domain,
            _env(
                payload,
                eid=event_id(f"split:{domain}", result.split_id),
                correlation_id=correlation_id,
                causation_id=None,
                domain=domain,
            ),
        )
        for domain in result.routing_domains
    ]
    out.append(
        OutboxEvent(
            Topic.IDENTITY_PROFILES,
            result.restored_id,
            _env(
                payload,
                eid=event_id("split", result.split_id),
                correlation_id=correlation_id,
                causation_id=None,
                domain=result.routing_domains[0],
            ),
        )
    )
    return out


def erased(result: ErasureResult, *, at: datetime) -> list[OutboxEvent]:
    """Tell routing to drop the customer, then tombstone every key the customer had on the compacted
    topics so compaction removes them."""
    out: list[OutboxEvent] = []
    for pid in (result.profile_id, *result.alias_ids):
        payload = CustomerErased(customer_id=pid, erased_at=at)
        for domain in result.routing_domains:
            out.append(
                OutboxEvent(
                    Topic.ROUTING_INBOX,
                    domain,
                    _env(
                        payload,
                        eid=event_id(f"erased:{domain}", pid),
                        correlation_id=None,
                        causation_id=None,
                        domain=domain,
                    ),
                )
            )
    for pid in (result.profile_id, *result.alias_ids):
        out.append(OutboxEvent(Topic.IDENTITY_PROFILES, pid, None))
    for key in result.consent_keys:
        out.append(OutboxEvent(Topic.IDENTITY_CONSENT, key, None))
    return out


def consent_changed(
    *,
    customer_id: str,
    address: Address,
    channel: Channel | None,
    opted_out: bool,
    reason: str,
    at: datetime,
    source_id: str,
    correlation_id: str | None = None,
) -> OutboxEvent:
    payload = ConsentChanged(
        customer_id=customer_id,
        address=address,
        channel=channel,
        opted_out=opted_out,
        reason=reason,
        changed_at=at,
    )
    env = _env(
        payload,
        eid=event_id("consent", f"{source_id}:{address.key}:{channel}"),
        correlation_id=correlation_id,
        causation_id=None,
        domain="default",
    )
    return OutboxEvent(
        Topic.IDENTITY_CONSENT, consent_key(address.key, channel.value if channel else None), env
    )
