"""The arrival plan: what each webhook of a run is, and when it is due (pure, seeded, reproducible).

Fixed spacing (1/rate) rather than Poisson: the issue asks for a fixed arrival rate, and equal spacing
makes the open loop's own lateness easy to see. The mix is what a contact centre receives: several
vendors, a Zipf-ish pool of customers (a few write often, most once), vendors redelivering a message
they already delivered (same vendor id, same body), and customers who write and then call.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum
from itertools import accumulate


class Kind(StrEnum):
    TWILIO_SMS = "twilio_sms"
    TWILIO_WHATSAPP = "twilio_whatsapp"
    META_WHATSAPP = "meta_whatsapp"
    TELEGRAM = "telegram"
    TWILIO_VOICE = "twilio_voice"


MESSAGE_KINDS = (Kind.TWILIO_SMS, Kind.TWILIO_WHATSAPP, Kind.META_WHATSAPP, Kind.TELEGRAM)
#: Kinds whose sender is the customer's phone number, so a later call is recognisably the same person.
PHONE_KINDS = frozenset({Kind.TWILIO_SMS})
_AREA_CODES = (415, 212, 312, 617, 206, 303, 512, 404, 305, 702)
_PHRASES = (
    "Hi, I need help with my bill",
    "My order has not arrived yet",
    "Can I change my plan?",
    "I was charged twice this month",
    "The app does not let me log in",
    "Do you ship to Canada?",
    "I would like to cancel my subscription",
    "Thanks, that helped!",
)


@dataclass(frozen=True)
class Mix:
    """Shares of new messages per vendor (normalised), and the rates of redeliveries and calls."""

    shares: tuple[tuple[Kind, float], ...] = (
        (Kind.TWILIO_SMS, 0.45),
        (Kind.TWILIO_WHATSAPP, 0.15),
        (Kind.META_WHATSAPP, 0.20),
        (Kind.TELEGRAM, 0.20),
    )
    redelivery_rate: float = 0.05
    call_rate: float = 0.03
    #: Probability that a customer uses their usual channel (else any other message channel).
    loyalty: float = 0.85
    zipf_s: float = 1.1
    #: A redelivery repeats one of the last this-many originals (vendors retry within seconds).
    redelivery_window: int = 200


@dataclass(frozen=True)
class Customer:
    index: int
    phone: str
    telegram_id: int
    usual: Kind


@dataclass(frozen=True)
class Arrival:
    seq: int
    at_s: float
    kind: Kind
    customer: int
    vendor_message_id: str
    #: Unique per vendor message and embedded in its text; empty for calls (they carry no text).
    token: str
    text: str
    redelivery: bool = False


def phone_for(index: int) -> str:
    area = _AREA_CODES[(index // 10_000) % len(_AREA_CODES)]
    return f"+1{area}555{index % 10_000:04d}"


def make_customers(count: int, mix: Mix, rng: random.Random) -> list[Customer]:
    kinds = [k for k, _ in mix.shares]
    weights = [w for _, w in mix.shares]
    return [Customer(i, phone_for(i), 700_000_000 + i, rng.choices(kinds, weights)[0]) for i in range(count)]


def zipf_cum_weights(count: int, s: float) -> list[float]:
    return list(accumulate(1.0 / (rank**s) for rank in range(1, count + 1)))


def _draw(cum: list[float], rng: random.Random) -> int:
    return min(bisect_left(cum, rng.random() * cum[-1]), len(cum) - 1)


def _vendor_id(kind: Kind, seq: int, rng: random.Random) -> str:
    if kind is Kind.TELEGRAM:
        return str(900_000_000 + seq)  # update_id: an increasing integer per bot
    if kind is Kind.META_WHATSAPP:
        return f"wamid.HBgL{rng.getrandbits(96):024X}"
    if kind is Kind.TWILIO_VOICE:
        return f"CA{rng.getrandbits(128):032x}"
    return f"SM{rng.getrandbits(128):032x}"


def build_schedule(
    *,
    rate: float,
    duration_s: float,
    run_id: str,
    seed: int = 1,
    mix: Mix | None = None,
    customers: int | None = None,
    calls: bool = True,
) -> tuple[list[Arrival], list[Customer]]:
    """Plan ``round(rate * duration_s)`` arrivals at ``seq / rate`` seconds from the start."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    mix = mix or Mix()
    rng = random.Random(seed)
    total = round(rate * duration_s)
    pool = make_customers(customers or max(20, total // 3), mix, rng)
    cum = zipf_cum_weights(len(pool), mix.zipf_s)
    originals: list[Arrival] = []
    phone_writers: list[int] = []
    plan: list[Arrival] = []
    for seq in range(total):
        at = seq / rate
        r = rng.random()
        if r < mix.redelivery_rate and originals:
            first = rng.choice(originals[-mix.redelivery_window :])
            plan.append(
                Arrival(
                    seq,
                    at,
                    first.kind,
                    first.customer,
                    first.vendor_message_id,
                    first.token,
                    first.text,
                    True,
                )
            )
            continue
        if calls and r < mix.redelivery_rate + mix.call_rate and phone_writers:
            who = rng.choice(phone_writers)
            arrival = Arrival(
                seq, at, Kind.TWILIO_VOICE, who, _vendor_id(Kind.TWILIO_VOICE, seq, rng), "", ""
            )
            plan.append(arrival)
            continue
        customer = pool[_draw(cum, rng)]
        kind = customer.usual if rng.random() < mix.loyalty else rng.choice(MESSAGE_KINDS)
        token = f"bk{run_id}x{seq}"
        text = f"{rng.choice(_PHRASES)} [{token}]"
        arrival = Arrival(seq, at, kind, customer.index, _vendor_id(kind, seq, rng), token, text)
        plan.append(arrival)
        originals.append(arrival)
        if kind in PHONE_KINDS:
            phone_writers.append(customer.index)
    return plan, pool
