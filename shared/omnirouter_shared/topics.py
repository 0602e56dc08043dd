"""The topic registry: every topic, its key, partitions, clean-up policy, producers and consumers.

This module is the single source of truth; docs/asyncapi.yaml, the Helm chart's KafkaTopic resources
and ``make run``'s topic creation are all derived from or checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Topic(StrEnum):
    INTERACTIONS_INBOUND = "omni.interactions.inbound"
    ROUTING_INBOX = "omni.routing.inbox"
    ROUTING_DECISIONS = "omni.routing.decisions"
    ROUTING_SNAPSHOTS = "omni.routing.snapshots"
    REPLIES_OUTBOUND = "omni.replies.outbound"
    REPLIES_STATUS = "omni.replies.status"
    IDENTITY_PROFILES = "omni.identity.profiles"
    IDENTITY_CONSENT = "omni.identity.consent"
    DEAD_LETTER = "omni.deadletter"


@dataclass(frozen=True)
class TopicSpec:
    topic: Topic
    key: str
    partitions: int
    cleanup_policy: str  # "delete" or "compact"
    retention_ms: int | None
    producers: tuple[str, ...]
    consumers: tuple[str, ...]
    events: tuple[str, ...]
    description: str
    config: dict[str, str] = field(default_factory=dict)

    def topic_config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, **self.config}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


_DAY = 24 * 3600 * 1000

TOPICS: dict[Topic, TopicSpec] = {
    spec.topic: spec
    for spec in (
        TopicSpec(
            Topic.INTERACTIONS_INBOUND,
            key="sender address key (e.g. 'phone:+14155550100'): per-sender order",
            partitions=12,
            cleanup_policy="delete",
            retention_ms=7 * _DAY,
            producers=("channel-gateway",),
            consumers=("identity-resolution",),
            events=("interaction.received", "interaction.status_changed"),
            description="Every inbound contact and call/delivery status, normalised, as received.",
        ),
        TopicSpec(
            Topic.ROUTING_INBOX,
            key="routing domain: one totally ordered input log per domain, one writer per partition",
            partitions=6,
            cleanup_policy="delete",
            retention_ms=7 * _DAY,
            producers=("identity-resolution", "agent-presence", "routing"),
            consumers=("routing",),
            events=(
                "interaction.resolved",
                "interaction.status_resolved",
                "customer.merged",
                "customer.split",
                "customer.erased",
                "agent.upserted",
                "agent.status_changed",
                "offer.accepted",
                "offer.rejected",
                "task.completed",
                "wrapup.done",
                "task.transfer_requested",
                "routing.tick",
            ),
            description=(
                "Everything routing decides on, for one routing domain in one partition, so routing's "
                "state is a deterministic fold of this log and can be replayed."
            ),
        ),
        TopicSpec(
            Topic.ROUTING_DECISIONS,
            key="agent id (task id when no agent is involved): per-agent order",
            partitions=6,
            cleanup_policy="delete",
            retention_ms=7 * _DAY,
            producers=("routing",),
            consumers=("agent-presence", "identity-resolution"),
            events=(
                "task.offered",
                "offer.rescinded",
                "task.assigned",
                "conversation.message",
                "task.queued",
                "task.closed",
                "agent.state_forced",
            ),
            description="Every routing decision, for agents' desktops, the timeline and audit.",
        ),
        TopicSpec(
            Topic.ROUTING_SNAPSHOTS,
            key="the inbox partition number the snapshot covers (one routing domain set per partition)",
            partitions=6,
            cleanup_policy="compact",
            retention_ms=None,
            producers=("routing",),
            consumers=("routing",),
            events=("routing.snapshot",),
            description="Routing state per domain with the inbox offset it covers: fast restore and failover.",
        ),
        TopicSpec(
            Topic.REPLIES_OUTBOUND,
            key="customer id: per-customer order of replies",
            partitions=12,
            cleanup_policy="delete",
            retention_ms=7 * _DAY,
            producers=("agent-presence", "identity-resolution"),
            consumers=("channel-gateway",),
            events=("reply.requested",),
            description="Replies from agents and bots, and proactive messages, to deliver through a vendor.",
        ),
        TopicSpec(
            Topic.REPLIES_STATUS,
            key="customer id",
            partitions=12,
            cleanup_policy="delete",
            retention_ms=7 * _DAY,
            producers=("channel-gateway",),
            consumers=("identity-resolution", "agent-presence"),
            events=("reply.delivery_status",),
            description="What happened to each reply: sent, failed, refused (opt-out), dead-lettered.",
        ),
        TopicSpec(
            Topic.IDENTITY_PROFILES,
            key="customer id (tombstone on erasure)",
            partitions=12,
            cleanup_policy="compact",
            retention_ms=None,
            producers=("identity-resolution",),
            consumers=("routing",),
            events=("customer.merged", "customer.split", "customer.erased"),
            description="Latest merge/split/erasure fact per profile; compacted so it can be re-read whole.",
        ),
        TopicSpec(
            Topic.IDENTITY_CONSENT,
            key="address key | channel ('*' = every channel), e.g. 'phone:+14155550100|sms'; tombstone on erasure",
            partitions=12,
            cleanup_policy="compact",
            retention_ms=None,
            producers=("identity-resolution",),
            consumers=("channel-gateway",),
            events=("consent.changed",),
            description="Opt-outs per address and channel; the gateway keeps a local copy to refuse sends.",
        ),
        TopicSpec(
            Topic.DEAD_LETTER,
            key="the original key",
            partitions=3,
            cleanup_policy="delete",
            retention_ms=30 * _DAY,
            producers=("channel-gateway", "identity-resolution", "routing", "agent-presence"),
            consumers=(),
            events=("any: the original bytes, with headers dlq.reason/source.topic/partition/offset/group",),
            description="Poison messages and undeliverable replies, with the reason; see docs/operations.md.",
        ),
    )
}
