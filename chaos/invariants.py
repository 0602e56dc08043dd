"""The invariants checked after each fault (pure: what was sent, what the desktops received and
routing's decision audit in, verdicts out).

- delivered_once: every webhook answered 2xx became exactly one message (its interaction id appears once
  in a task's messages) in exactly one conversation and one task, and reached an agent's desktop;
- no_double_offer: no task was offered to an agent while an earlier offer of it was still standing;
- capacity: no agent ever held (offered + assigned) more tasks of a channel than its capacity;
- offers_settled: every offer ended assigned or rescinded, every rescinded task was re-queued (or
  closed), and no task was left open once the load had drained;
- answered: every webhook was eventually answered 2xx (the load generator retries like a vendor).

Within one inbox offset, routing's decisions are one atomic step: closings (rescind, assign, close,
re-queue) are applied before new offers, so a rescind-and-re-offer in one step is not a double offer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.matching import FrameRecord

_CLOSING_FIRST = {"offer.rescinded": 0, "task.assigned": 0, "task.closed": 0, "task.queued": 0}
DELIVERY_FRAMES = frozenset({"offer", "assigned", "message"})


@dataclass(frozen=True)
class Sent:
    """One vendor message as the load generator sent it (retried until 2xx, like a vendor)."""

    phase: str
    token: str
    interaction_id: str
    first_ns: int
    ok_ns: int | None
    attempts: int
    redelivery: bool = False


@dataclass(frozen=True)
class AuditRow:
    type: str
    task_id: str
    agent_id: str
    partition: int
    offset: int
    event_id: str
    payload: Mapping[str, Any]


@dataclass
class Verdict:
    ok: bool = True
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def fail(self, example: str, limit: int = 5) -> None:
        self.ok = False
        self.count += 1
        if len(self.examples) < limit:
            self.examples.append(example)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "violations": self.count, "examples": self.examples}


@dataclass
class AuditFacts:
    """What the decision audit says, indexed for the checks."""

    conversations: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    tasks: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    repeated_in_task: set[str] = field(default_factory=set)
    task_interactions: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    double_offers: list[tuple[str, str]] = field(default_factory=list)  # (task, detail)
    over_capacity: list[tuple[str, str]] = field(default_factory=list)
    unsettled: list[tuple[str, str]] = field(default_factory=list)
    open_tasks: set[str] = field(default_factory=set)
    offers: int = 0
    assigned: int = 0
    rescinded: int = 0
    peak_held: int = 0


def _messages_of(row: AuditRow) -> tuple[str, list[str]]:
    p = row.payload
    if row.type in ("task.offered", "task.assigned"):
        task = p.get("task") or {}
        ids = [str(m.get("interaction_id")) for m in task.get("messages") or () if isinstance(m, dict)]
        return str(task.get("conversation_id") or ""), ids
    if row.type == "conversation.message":
        msg = p.get("message") or {}
        return str(p.get("conversation_id") or ""), [str(msg.get("interaction_id"))]
    return "", []


def _channel_of(row: AuditRow) -> str:
    task = row.payload.get("task") or {}
    return str(task.get("channel") or row.payload.get("channel") or "?")


def read_audit(rows: Sequence[AuditRow], capacity: Mapping[str, int]) -> AuditFacts:
    facts = AuditFacts()
    ordered = sorted(rows, key=lambda r: (r.partition, r.offset, _CLOSING_FIRST.get(r.type, 1)))
    standing: dict[str, tuple[str, str]] = {}  # task -> (offer id, agent)
    held: dict[str, dict[str, str]] = defaultdict(dict)  # agent -> task -> channel
    rescinded_waiting: dict[str, str] = {}  # task -> offer id rescinded, waiting for a re-queue
    seen_tasks: set[str] = set()
    closed: set[str] = set()
    for row in ordered:
        conv, ids = _messages_of(row)
        for iid in ids:
            if conv:
                facts.conversations[iid].add(conv)
            if row.task_id:
                facts.tasks[iid].add(row.task_id)
                facts.task_interactions[row.task_id].add(iid)
        if len(ids) != len(set(ids)):
            facts.repeated_in_task.update(i for i in ids if ids.count(i) > 1)
        task = row.task_id
        if task:
            seen_tasks.add(task)
        if row.type == "task.offered":
            facts.offers += 1
            offer_id = str(row.payload.get("offer_id") or row.event_id)
            if task in standing:
                prev_offer, prev_agent = standing[task]
                facts.double_offers.append(
                    (
                        task,
                        f"task {task} offered to {row.agent_id} while offer {prev_offer} to {prev_agent} stood",
                    )
                )
            standing[task] = (offer_id, row.agent_id)
            rescinded_waiting.pop(task, None)
            held[row.agent_id][task] = _channel_of(row)
        elif row.type == "offer.rescinded":
            facts.rescinded += 1
            offer = standing.pop(task, None)
            held[row.agent_id].pop(task, None)
            rescinded_waiting[task] = str(row.payload.get("offer_id") or (offer[0] if offer else ""))
        elif row.type == "task.assigned":
            facts.assigned += 1
            standing.pop(task, None)
            held[row.agent_id][task] = _channel_of(row)
        elif row.type == "task.queued":
            rescinded_waiting.pop(task, None)
            standing.pop(task, None)
            for tasks in held.values():
                tasks.pop(task, None)
        elif row.type == "task.closed":
            closed.add(task)
            rescinded_waiting.pop(task, None)
            standing.pop(task, None)
            for tasks in held.values():
                tasks.pop(task, None)
        if row.agent_id and row.type in ("task.offered", "task.assigned"):
            per_channel: dict[str, int] = defaultdict(int)
            for ch in held[row.agent_id].values():
                per_channel[ch] += 1
            facts.peak_held = max(facts.peak_held, sum(per_channel.values()))
            for ch, n in per_channel.items():
                if n > capacity.get(ch, 1):
                    facts.over_capacity.append(
                        (task, f"agent {row.agent_id} held {n} {ch} tasks (capacity {capacity.get(ch, 1)})")
                    )
    for task, (offer_id, agent) in standing.items():
        facts.unsettled.append((task, f"offer {offer_id} of task {task} to {agent} never answered"))
    for task, offer_id in rescinded_waiting.items():
        facts.unsettled.append((task, f"offer {offer_id} of task {task} rescinded and never re-queued"))
    facts.open_tasks = seen_tasks - closed
    return facts


def delivered_tokens(frames: Iterable[FrameRecord]) -> dict[str, int]:
    """Token -> when a desktop first saw it (monotonic ns)."""
    first: dict[str, int] = {}
    for f in frames:
        if f.type in DELIVERY_FRAMES:
            for t in f.tokens:
                if t not in first or f.recv_ns < first[t]:
                    first[t] = f.recv_ns
    return first


def _p95(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, int(0.95 * len(s)))]


@dataclass(frozen=True)
class Window:
    """When the fault was injected and when it was healed (monotonic ns)."""

    injected_ns: int
    healed_ns: int


def recovery(sends: Sequence[Sent], delivered: Mapping[str, int], window: Window) -> dict[str, Any]:
    """How long after the fault ended (``window.healed_ns``) new webhooks were again offered within a
    normal latency: max(2 s, 3 x this phase's pre-fault p95), webhook first sent -> a desktop saw it.

    A webhook sent since the injection is *slow* when it reached no desktop or took longer than that.
    The flow has recovered when a webhook sent after the last slow one reaches a desktop: ``recovery_s``
    is that moment minus the end of the fault (0 when nothing sent after the injection was slow, None
    when the phase ended before the flow recovered), ``disturbed_s`` the same moment minus the
    injection. Vendor redeliveries of an earlier message (same vendor id) are not new webhooks."""
    fresh = sorted((s for s in sends if not s.redelivery and s.ok_ns is not None), key=lambda s: s.first_ns)
    before = [
        (delivered[s.token] - s.first_ns) / 1e9
        for s in fresh
        if s.first_ns < window.injected_ns and s.token in delivered
    ]
    threshold = max(2.0, 3 * _p95(before))
    since = [s for s in fresh if s.first_ns >= window.injected_ns]

    def latency(s: Sent) -> float | None:
        at = delivered.get(s.token)
        return None if at is None else (at - s.first_ns) / 1e9

    slow = [i for i, s in enumerate(since) if (lat := latency(s)) is None or lat > threshold]
    recovery_s: float | None = 0.0
    disturbed_s: float | None = 0.0
    if slow:
        later = [delivered[s.token] for s in since[slow[-1] + 1 :] if s.token in delivered]
        if later:
            recovered_ns = min(later)
            recovery_s = round(max(0, recovered_ns - window.healed_ns) / 1e9, 2)
            disturbed_s = round((recovered_ns - window.injected_ns) / 1e9, 2)
        else:
            recovery_s = disturbed_s = None
    latencies = [lat for s in since if (lat := latency(s)) is not None]
    return {
        "baseline_p95_s": round(_p95(before), 3),
        "threshold_s": round(threshold, 3),
        "fault_s": round((window.healed_ns - window.injected_ns) / 1e9, 2),
        "recovery_s": recovery_s,
        "disturbed_s": disturbed_s,
        "slow_webhooks": len(slow),
        "max_latency_s": round(max(latencies, default=0.0), 2),
        "webhooks_retried": sum(s.attempts > 1 for s in sends),
        "max_attempts": max((s.attempts for s in sends), default=0),
    }


def check_phase(
    sends: Sequence[Sent], delivered: Mapping[str, int], facts: AuditFacts, token_of: Mapping[str, str]
) -> dict[str, Verdict]:
    """Verdicts for one phase's messages (and the tasks that carry them)."""
    answered = Verdict()
    once = Verdict()
    for s in sends:
        if s.ok_ns is None:
            answered.fail(f"{s.token}: never answered 2xx after {s.attempts} attempts")
    phase_ids = {s.interaction_id for s in sends if s.ok_ns is not None}
    for s in sends:
        if s.ok_ns is None or s.redelivery:
            continue
        iid = s.interaction_id
        convs, tasks = facts.conversations.get(iid, set()), facts.tasks.get(iid, set())
        if not tasks:
            once.fail(f"{s.token}: answered 2xx but in no routing decision (lost)")
        elif len(convs) != 1 or len(tasks) != 1:
            once.fail(f"{s.token}: in {len(convs)} conversations / {len(tasks)} tasks {sorted(tasks)[:3]}")
        elif iid in facts.repeated_in_task:
            once.fail(f"{s.token}: the same message twice in one task")
        elif s.token not in delivered:
            once.fail(f"{s.token}: decided by routing but no desktop received it")
    phase_tasks = {t for t, ids in facts.task_interactions.items() if ids & phase_ids}

    def scoped(items: Iterable[tuple[str, str]]) -> Verdict:
        v = Verdict()
        for task, detail in items:
            if task in phase_tasks:
                v.fail(detail)
        return v

    settled = scoped(facts.unsettled)
    for task in sorted(facts.open_tasks & phase_tasks):
        tokens = sorted(token_of.get(i, i) for i in facts.task_interactions[task])
        settled.fail(f"task {task} still open after the drain ({', '.join(tokens[:3])})")
    return {
        "answered": answered,
        "delivered_once": once,
        "no_double_offer": scoped(facts.double_offers),
        "capacity": scoped(facts.over_capacity),
        "offers_settled": settled,
    }
