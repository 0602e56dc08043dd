from collections import Counter

import pytest

from bench.schedule import PHONE_KINDS, Arrival, Kind, Mix, build_schedule, phone_for


def test_arrivals_are_evenly_spaced_at_the_rate_for_the_duration() -> None:
    plan, _ = build_schedule(rate=50, duration_s=4, run_id="r1")
    assert len(plan) == 200
    assert [a.seq for a in plan] == list(range(200))
    assert all(a.at_s == pytest.approx(a.seq / 50) for a in plan)
    assert plan[-1].at_s < 4


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    a, _ = build_schedule(rate=100, duration_s=2, run_id="r1", seed=7)
    b, _ = build_schedule(rate=100, duration_s=2, run_id="r1", seed=7)
    c, _ = build_schedule(rate=100, duration_s=2, run_id="r1", seed=8)
    assert a == b
    assert a != c


def test_every_original_message_has_its_own_token_and_vendor_id() -> None:
    plan, _ = build_schedule(rate=200, duration_s=10, run_id="abc")
    originals = [a for a in plan if not a.redelivery and a.kind is not Kind.TWILIO_VOICE]
    assert len({a.token for a in originals}) == len(originals)
    assert len({a.vendor_message_id for a in originals}) == len(originals)
    assert all(a.token.startswith("bkabcx") and a.token in a.text for a in originals)


def test_redeliveries_repeat_an_earlier_message_exactly_about_five_percent_of_the_time() -> None:
    plan, _ = build_schedule(rate=200, duration_s=10, run_id="abc")
    first_seen: dict[str, Arrival] = {}
    for a in plan:
        if not a.redelivery:
            first_seen.setdefault(a.vendor_message_id, a)
            continue
        original = first_seen[a.vendor_message_id]  # it was planned before the redelivery
        assert (a.kind, a.customer, a.token, a.text) == (
            original.kind,
            original.customer,
            original.token,
            original.text,
        )
    share = sum(a.redelivery for a in plan) / len(plan)
    assert 0.035 < share < 0.065


def test_callers_are_customers_who_wrote_from_their_phone_before() -> None:
    plan, customers = build_schedule(rate=200, duration_s=10, run_id="abc")
    wrote: set[int] = set()
    calls = 0
    for a in plan:
        if a.kind is Kind.TWILIO_VOICE:
            calls += 1
            assert a.customer in wrote and a.token == "" and a.vendor_message_id.startswith("CA")
        elif a.kind in PHONE_KINDS:
            wrote.add(a.customer)
    assert calls > 0
    assert customers[0].phone == phone_for(0)


def test_no_calls_when_the_gateway_cannot_take_them() -> None:
    plan, _ = build_schedule(rate=200, duration_s=5, run_id="abc", calls=False)
    assert not any(a.kind is Kind.TWILIO_VOICE for a in plan)
    assert len(plan) == 1000


def test_the_mix_has_every_vendor_and_a_few_customers_write_often() -> None:
    plan, customers = build_schedule(rate=200, duration_s=10, run_id="abc", mix=Mix(redelivery_rate=0))
    kinds = Counter(a.kind for a in plan)
    assert set(kinds) >= {Kind.TWILIO_SMS, Kind.TWILIO_WHATSAPP, Kind.META_WHATSAPP, Kind.TELEGRAM}
    per_customer = Counter(a.customer for a in plan)
    counts = sorted(per_customer.values(), reverse=True)
    assert counts[0] > 20 * counts[len(counts) // 2]  # Zipf-ish: a heavy head, a long tail
    assert len(per_customer) < len(customers)  # many customers never write in a short run


def test_phone_numbers_are_distinct_e164() -> None:
    phones = {phone_for(i) for i in range(30_000)}
    assert len(phones) == 30_000
    assert all(p.startswith("+1") and len(p) == 12 for p in phones)


def test_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        build_schedule(rate=0, duration_s=1, run_id="x")
