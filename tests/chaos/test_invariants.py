"""The chaos verdicts on hand-built audits: each invariant catches the break it names, and a clean
rescind-and-re-offer inside one routing step is not a double offer."""

from __future__ import annotations

from typing import Any

from bench.matching import FrameRecord
from chaos.invariants import AuditRow, Sent, Window, check_phase, delivered_tokens, read_audit, recovery

CAP = {"sms": 2}


def task(tid: str, conv: str, *iids: str) -> dict[str, Any]:
    return {
        "id": tid,
        "conversation_id": conv,
        "channel": "sms",
        "messages": [{"interaction_id": i} for i in iids],
    }


def row(kind: str, tid: str, agent: str, offset: int, **payload: Any) -> AuditRow:
    return AuditRow(kind, tid, agent, 0, offset, f"{kind}-{tid}-{agent}-{offset}", payload)


def sent(token: str, iid: str, ok: bool = True) -> Sent:
    return Sent("p", token, iid, 0, 1 if ok else None, 1)


def frames_for(*tokens: str) -> dict[str, int]:
    return delivered_tokens([FrameRecord(10, "a", "offer", "t", "o", tokens)])


def test_a_clean_flow_passes_and_rescind_then_reoffer_in_one_step_is_not_doubled() -> None:
    rows = [
        row("task.queued", "t1", "", 1),
        row("task.offered", "t1", "a", 2, offer_id="o1", task=task("t1", "c1", "i1")),
        row("task.offered", "t1", "b", 3, offer_id="o2", task=task("t1", "c1", "i1")),  # same step
        row("offer.rescinded", "t1", "a", 3, offer_id="o1"),
        row("task.assigned", "t1", "b", 4, task=task("t1", "c1", "i1")),
        row("task.closed", "t1", "b", 5),
    ]
    verdicts = check_phase([sent("k1", "i1")], frames_for("k1"), read_audit(rows, CAP), {})
    assert {k: v.ok for k, v in verdicts.items()} == dict.fromkeys(verdicts, True)


def test_each_break_is_named() -> None:
    rows = [
        row("task.offered", "t1", "a", 1, offer_id="o1", task=task("t1", "c1", "i1")),
        row("task.offered", "t1", "b", 2, offer_id="o2", task=task("t1", "c1", "i1")),  # o1 still stands
        row("task.offered", "t2", "a", 3, offer_id="o3", task=task("t2", "c2", "i2", "i2")),
        row("task.offered", "t3", "a", 4, offer_id="o4", task=task("t3", "c3", "i3")),  # a holds 3 > 2
        row("task.offered", "t4", "c", 5, offer_id="o5", task=task("t4", "c9", "i4")),
        row("task.offered", "t5", "c", 6, offer_id="o6", task=task("t5", "c8", "i4")),  # i4 in 2 convs
    ]
    facts = read_audit(rows, CAP)
    sends = [sent(f"k{i}", f"i{i}") for i in range(1, 5)] + [sent("k5", "i5"), sent("k6", "i6", ok=False)]
    v = check_phase(sends, frames_for("k1", "k2", "k3"), facts, {})
    assert not v["no_double_offer"].ok and "while offer o1" in v["no_double_offer"].examples[0]
    assert not v["capacity"].ok and "held 3 sms" in v["capacity"].examples[0]
    assert not v["offers_settled"].ok
    once = " ".join(v["delivered_once"].examples)
    assert "k2: the same message twice" in once
    assert "k4: in 2 conversations" in once
    assert "k5: answered 2xx but in no routing decision" in once
    assert not v["answered"].ok and v["answered"].count == 1


def test_recovery_counts_from_the_end_of_the_fault_until_new_webhooks_are_fast_again() -> None:
    s = 1_000_000_000
    sends = [Sent("p", f"k{i}", f"i{i}", i * s, i * s, 1) for i in range(12)]
    # 0.1 s each before the fault (5 s to 8 s); those sent at 5, 6, 7 and 8 s reach a desktop at 12 s,
    # the one sent at 9 s at 9.1 s: the flow is fast again at 9.1 s, 1.1 s after the fault ended.
    delivered = {f"k{i}": i * s + s // 10 for i in range(12)}
    for i in (5, 6, 7, 8):
        delivered[f"k{i}"] = 12 * s
    r = recovery(sends, delivered, Window(5 * s, 8 * s))
    assert (r["recovery_s"], r["disturbed_s"], r["fault_s"], r["threshold_s"]) == (1.1, 4.1, 3.0, 2.0)
    assert r["slow_webhooks"] == 4 and r["max_latency_s"] == 7.0


def test_recovery_is_zero_when_nothing_was_slow_and_none_when_the_flow_never_recovered() -> None:
    s = 1_000_000_000
    sends = [Sent("p", f"k{i}", f"i{i}", i * s, i * s, 1) for i in range(8)]
    delivered = {f"k{i}": i * s + s // 10 for i in range(8)}
    assert recovery(sends, delivered, Window(3 * s, 4 * s))["recovery_s"] == 0.0
    del delivered["k7"]  # the last webhook of the phase never reached a desktop
    r = recovery(sends, delivered, Window(3 * s, 4 * s))
    assert r["recovery_s"] is None and r["disturbed_s"] is None


def test_a_slow_redelivery_or_a_slow_message_before_the_fault_does_not_count() -> None:
    s = 1_000_000_000
    sends = [Sent("p", f"k{i}", f"i{i}", i * s, i * s, 1) for i in range(8)]
    sends.append(Sent("p", "k3", "i3", 6 * s, 6 * s, 1, redelivery=True))
    delivered = {f"k{i}": i * s + s // 10 for i in range(8)}
    delivered["k1"] = 5 * s  # slow, but sent before the injection at 4 s
    assert recovery(sends, delivered, Window(4 * s, 5 * s))["recovery_s"] == 0.0
