import re

import pytest

from bench.matching import FrameRecord, SendRecord, frame_marks, match, task_id_of

TOKEN = re.compile(r"bkrun[xw]\d+")
MS = 1_000_000


def send(
    seq: int,
    token: str,
    sent_ms: int,
    status: int = 200,
    *,
    redelivery: bool = False,
    kind: str = "twilio_sms",
    iid: str = "",
) -> SendRecord:
    return SendRecord(
        seq,
        kind,
        token,
        iid or f"iid-{token}",
        redelivery,
        sent_ms * MS,
        sent_ms * MS,
        (sent_ms + 3) * MS,
        status,
    )


def frame(
    at_ms: int, kind: str, task: str, *tokens: str, offer: str = "", ids: tuple[str, ...] = ()
) -> FrameRecord:
    return FrameRecord(at_ms * MS, "agent-1", kind, task, offer or f"o-{task}", tuple(tokens), ids)


def test_frame_marks_reads_messages_but_not_the_history() -> None:
    offer = {
        "type": "offer",
        "offer_id": "o1",
        "task": {
            "id": "t1",
            "messages": [{"interaction_id": "i2", "text": "My bill [bkrunx2]"}],
            "history": [{"interaction_id": "i1", "text": "earlier [bkrunx1]"}],
            "transcript": ["bot said [bkrunx0]"],
        },
    }
    assert frame_marks(offer, TOKEN) == (("bkrunx2",), ("i2",))
    assert task_id_of(offer) == "t1"
    message = {
        "type": "message",
        "task_id": "t1",
        "message": {"interaction_id": "i3", "text": "again [bkrunx3]"},
    }
    assert frame_marks(message, TOKEN) == (("bkrunx3",), ("i3",))
    assert task_id_of(message) == "t1"


def test_offers_give_latency_from_the_send_and_messages_count_as_delivered() -> None:
    sends = [send(0, "bkrunx0", 0), send(1, "bkrunx1", 10), send(2, "bkrunx2", 20)]
    frames = [
        frame(12, "offer", "t0", "bkrunx0"),
        frame(40, "assigned", "t0", "bkrunx0"),
        frame(30, "offer", "t1", "bkrunx1"),
        frame(45, "message", "t0", "bkrunx2"),  # joined the open conversation of a repeat customer
    ]
    out = match(sends, frames, start_ns=0)
    assert (out.interactions, out.offered, out.delivered_as_message, out.lost, out.duplicated) == (
        3,
        2,
        1,
        0,
        0,
    )
    assert out.offer_latency.count == 2
    assert out.offer_latency.max_ms == pytest.approx(20)
    assert out.message_latency.p50_ms == pytest.approx(25)
    assert out.offer_points == [(0.0, 12.0), (0.01, 20.0)]


def test_an_accepted_message_never_shown_to_an_agent_is_lost_and_a_refused_one_is_not_expected() -> None:
    sends = [send(0, "bkrunx0", 0), send(1, "bkrunx1", 1), send(2, "bkrunx2", 2, status=503)]
    out = match(sends, [frame(5, "offer", "t0", "bkrunx0")], start_ns=0)
    assert (out.interactions, out.lost, out.accepted, out.errors) == (2, 1, 2, 0)
    assert out.lost_examples == ["bkrunx1 (twilio_sms)"]
    assert out.status_counts == {"200": 2, "503": 1}


def test_a_redelivered_webhook_is_one_interaction_timed_from_its_first_accepted_send() -> None:
    sends = [
        send(0, "bkrunx0", 0, status=503),
        send(5, "bkrunx0", 50, redelivery=True),
        send(6, "bkrunx0", 60, redelivery=True),
    ]
    out = match(sends, [frame(70, "offer", "t0", "bkrunx0")], start_ns=0)
    assert (out.interactions, out.offered, out.duplicated, out.accepted) == (1, 1, 0, 2)
    assert out.offer_latency.p50_ms == pytest.approx(20)


def test_one_interaction_in_two_tasks_is_duplicated() -> None:
    frames = [frame(5, "offer", "t0", "bkrunx0"), frame(6, "offer", "t9", "bkrunx0")]
    out = match([send(0, "bkrunx0", 0)], frames, start_ns=0)
    assert out.duplicated == 1
    assert out.duplicated_examples == ["bkrunx0: tasks ['t0', 't9']"]


def test_a_task_offered_again_while_its_offer_stands_is_duplicated_but_not_after_a_rescind() -> None:
    doubled = [frame(5, "offer", "t0", "bkrunx0", offer="o1"), frame(6, "offer", "t0", "bkrunx0", offer="o1")]
    assert match([send(0, "bkrunx0", 0)], doubled, start_ns=0).duplicated == 1
    reoffered = [
        frame(5, "offer", "t0", "bkrunx0", offer="o1"),
        FrameRecord(8 * MS, "agent-1", "rescind", "", "o1"),  # names only the offer
        frame(9, "offer", "t0", "bkrunx0", offer="o2"),
    ]
    out = match([send(0, "bkrunx0", 0)], reoffered, start_ns=0)
    assert (out.duplicated, out.reoffered, out.offered) == (0, 1, 1)
    assert out.offer_latency.p50_ms == pytest.approx(5)


def test_interaction_ids_match_when_the_text_is_not_shown_and_calls_are_tracked_apart() -> None:
    sends = [
        send(0, "bkrunx0", 0, iid="i-sms"),
        SendRecord(1, "twilio_voice", "", "i-call", False, MS, MS, 2 * MS, 200),
        SendRecord(2, "twilio_voice", "", "i-call-2", False, MS, MS, 2 * MS, 200),
    ]
    frames = [frame(4, "offer", "t0", ids=("i-sms",)), frame(6, "offer", "t1", ids=("i-call",))]
    out = match(sends, frames, start_ns=0)
    assert (out.interactions, out.offered, out.lost) == (1, 1, 0)
    assert (out.calls_accepted, out.calls_seen) == (2, 1)


def test_refused_and_failed_sends_are_counted_apart() -> None:
    sends = [
        SendRecord(0, "twilio_sms", "bkrunx0", "i0", False, 0, 0, 0, 0, "refused"),
        SendRecord(1, "twilio_sms", "bkrunx1", "i1", False, 0, 0, 0, 0, "timeout"),
    ]
    out = match(sends, [], start_ns=0)
    assert (out.sent, out.accepted, out.refused, out.errors, out.lost) == (2, 0, 1, 1, 0)


def test_frame_records_survive_the_jsonl_round_trip() -> None:
    f = FrameRecord(12, "a", "offer", "t", "o", ("bkrunx1",), ("i1",))
    assert FrameRecord.from_json(f.to_json()) == f


def test_a_hand_over_whose_rescind_trails_the_new_offer_is_not_a_double_offer() -> None:
    # Routing rescinded o1 and offered the task to agent-2 in one batch; the feeds delivered agent-2's
    # offer 2 ms before agent-1's rescind.
    handover = [
        FrameRecord(5 * MS, "agent-1", "offer", "t0", "o1", ("bkrunx0",), ()),
        FrameRecord(90 * MS, "agent-2", "offer", "t0", "o2", ("bkrunx0",), ()),
        FrameRecord(92 * MS, "agent-1", "rescind", "", "o1"),
    ]
    out = match([send(0, "bkrunx0", 0)], handover, start_ns=0)
    assert (out.duplicated, out.reoffered) == (0, 1)
    # The old offer still standing well after the new one: a double offer.
    standing = [*handover[:2], FrameRecord(400 * MS, "agent-1", "rescind", "", "o1")]
    assert match([send(0, "bkrunx0", 0)], standing, start_ns=0).duplicated == 1
