"""From what was sent and what the agents' desktops received to delivered, lost and duplicated (pure).

Each message carries a unique token in its text; a frame names an interaction when its task's messages
(or a ``message`` frame's message) contain the token or the interaction id. A message that joins an
already open conversation is delivered as a ``message`` frame (or inside the ``assigned`` task), not as
an offer: it counts as delivered, not as lost. ``history`` and ``transcript`` are skipped because they
repeat earlier interactions by design.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.stats import LatencySummary

_SKIPPED_KEYS = frozenset({"history", "transcript"})


@dataclass(frozen=True)
class SendRecord:
    seq: int
    kind: str
    token: str
    interaction_id: str
    redelivery: bool
    planned_ns: int
    sent_ns: int
    done_ns: int
    #: HTTP status, or 0 when no answer came (connection refused, time-out, or refused by the bound).
    status: int
    error: str = ""

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class FrameRecord:
    recv_ns: int
    agent: str
    type: str
    task_id: str
    offer_id: str
    tokens: tuple[str, ...] = ()
    interaction_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "recv_ns": self.recv_ns,
            "agent": self.agent,
            "type": self.type,
            "task_id": self.task_id,
            "offer_id": self.offer_id,
            "tokens": list(self.tokens),
            "interaction_ids": list(self.interaction_ids),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameRecord:
        return cls(
            recv_ns=int(data["recv_ns"]),
            agent=str(data["agent"]),
            type=str(data["type"]),
            task_id=str(data.get("task_id") or ""),
            offer_id=str(data.get("offer_id") or ""),
            tokens=tuple(data.get("tokens") or ()),
            interaction_ids=tuple(data.get("interaction_ids") or ()),
        )


def frame_marks(frame: Any, token_re: re.Pattern[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tokens found in any string of the frame, and values of ``interaction_id`` keys, outside history."""
    tokens: list[str] = []
    ids: list[str] = []
    stack = [frame]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SKIPPED_KEYS:
                    continue
                if key == "interaction_id" and isinstance(value, str):
                    ids.append(value)
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            tokens.extend(token_re.findall(node))
    return tuple(dict.fromkeys(tokens)), tuple(dict.fromkeys(ids))


def task_id_of(frame: dict[str, Any]) -> str:
    task = frame.get("task")
    if isinstance(task, dict) and isinstance(task.get("id"), str):
        return str(task["id"])
    return str(frame.get("task_id") or "")


@dataclass
class Outcome:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    errors: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    interactions: int = 0
    offered: int = 0
    delivered_as_message: int = 0
    delivered_on_assign: int = 0
    lost: int = 0
    duplicated: int = 0
    reoffered: int = 0
    calls_accepted: int = 0
    calls_seen: int = 0
    offer_latency: LatencySummary = field(default_factory=lambda: LatencySummary.of([]))
    message_latency: LatencySummary = field(default_factory=lambda: LatencySummary.of([]))
    #: (seconds since the first planned arrival, webhook->offer ms) for the plot.
    offer_points: list[tuple[float, float]] = field(default_factory=list)
    lost_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)


@dataclass
class _Seen:
    first_offer_ns: int | None = None
    first_message_ns: int | None = None
    first_assigned_ns: int | None = None
    offer_tasks: set[str] = field(default_factory=set)
    double_offered: bool = False


#: Routing rescinds an offer and offers the task elsewhere in one decision batch (the first agent took
#: a call, went away...). The two frames travel on different agents' feeds, so the new offer can reach
#: its desktop a moment before the rescind reaches the old one; that is a hand-over, not a double offer.
HANDOVER_NS = 100_000_000


def _classify_offers(frames: Sequence[FrameRecord]) -> tuple[set[str], int]:
    """Tasks offered again while an earlier offer of them was still standing, and legitimate re-offers."""
    standing: dict[str, str] = {}
    task_of_offer: dict[str, str] = {}
    doubled: set[str] = set()
    #: old offer id -> (task, the new offer's arrival): doubled unless the old one ends within HANDOVER_NS.
    suspect: dict[str, tuple[str, int]] = {}
    reoffers = 0
    offered_before: set[str] = set()
    for f in sorted(frames, key=lambda f: f.recv_ns):
        for old, (task, at) in list(suspect.items()):
            if f.recv_ns - at > HANDOVER_NS:
                doubled.add(task)
                del suspect[old]
        if f.type == "offer" and f.task_id:
            if f.task_id in standing:
                suspect[standing[f.task_id]] = (f.task_id, f.recv_ns)
            elif f.task_id in offered_before:
                reoffers += 1
            standing[f.task_id] = f.offer_id
            task_of_offer[f.offer_id] = f.task_id
            offered_before.add(f.task_id)
        elif f.type in ("rescind", "assigned", "closed"):
            # A rescind may name only the offer; the task is then the one that offer was for.
            task = f.task_id or task_of_offer.get(f.offer_id, "")
            if f.offer_id in suspect:
                del suspect[f.offer_id]
                reoffers += 1
                continue
            standing.pop(task, None)
    doubled.update(task for task, _ in suspect.values())
    return doubled, reoffers


def match(
    sends: Iterable[SendRecord], frames: Sequence[FrameRecord], *, start_ns: int, examples: int = 10
) -> Outcome:
    out = Outcome()
    first_ok: dict[str, SendRecord] = {}
    calls: dict[str, SendRecord] = {}
    by_interaction: dict[str, str] = {}
    for s in sends:
        out.sent += 1
        if s.accepted:
            out.accepted += 1
        elif s.error == "refused":
            out.refused += 1
        elif s.status == 0:
            out.errors += 1
        label = str(s.status) if s.status else (s.error or "error")
        out.status_counts[label] = out.status_counts.get(label, 0) + 1
        if not s.accepted:
            continue
        if not s.token:
            calls.setdefault(s.interaction_id, s)
            continue
        earlier = first_ok.get(s.token)
        if earlier is None or s.sent_ns < earlier.sent_ns:
            first_ok[s.token] = s
        by_interaction[s.interaction_id] = s.token

    seen: dict[str, _Seen] = {}
    call_seen: set[str] = set()
    doubled_tasks, out.reoffered = _classify_offers(frames)
    for f in frames:
        names = set(f.tokens)
        for iid in f.interaction_ids:
            if iid in by_interaction:
                names.add(by_interaction[iid])
            elif iid in calls:
                call_seen.add(iid)
        for token in names:
            if token not in first_ok:
                continue
            st = seen.setdefault(token, _Seen())
            if f.type == "offer":
                st.first_offer_ns = min(st.first_offer_ns or f.recv_ns, f.recv_ns)
                st.offer_tasks.add(f.task_id)
                st.double_offered |= f.task_id in doubled_tasks
            elif f.type == "message":
                st.first_message_ns = min(st.first_message_ns or f.recv_ns, f.recv_ns)
            elif f.type == "assigned":
                st.first_assigned_ns = min(st.first_assigned_ns or f.recv_ns, f.recv_ns)

    offer_ms: list[float] = []
    message_ms: list[float] = []
    out.interactions = len(first_ok)
    for token, send in sorted(first_ok.items(), key=lambda kv: kv[1].seq):
        found = seen.get(token)
        if found is None or (
            found.first_offer_ns is None
            and found.first_message_ns is None
            and found.first_assigned_ns is None
        ):
            out.lost += 1
            if len(out.lost_examples) < examples:
                out.lost_examples.append(f"{token} ({send.kind})")
            continue
        st = found
        if len(st.offer_tasks) > 1 or st.double_offered:
            out.duplicated += 1
            if len(out.duplicated_examples) < examples:
                out.duplicated_examples.append(f"{token}: tasks {sorted(st.offer_tasks)}")
        first_message = st.first_message_ns
        if st.first_offer_ns is not None and (first_message is None or st.first_offer_ns <= first_message):
            out.offered += 1
            ms = (st.first_offer_ns - send.sent_ns) / 1e6
            offer_ms.append(ms)
            out.offer_points.append(((send.planned_ns - start_ns) / 1e9, ms))
        elif first_message is not None:
            out.delivered_as_message += 1
            message_ms.append((first_message - send.sent_ns) / 1e6)
        else:
            out.delivered_on_assign += 1
    out.offer_latency = LatencySummary.of(offer_ms)
    out.message_latency = LatencySummary.of(message_ms)
    out.calls_accepted = len(calls)
    out.calls_seen = len(call_seen)
    return out
