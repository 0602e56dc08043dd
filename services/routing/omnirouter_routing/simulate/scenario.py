"""The traffic and the workforce of a simulation: arrivals, handling times, agents, behaviour."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from omnirouter_routing.config import RoutingConfig
from omnirouter_shared.contracts.agents import AgentKind, AgentUpserted
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.identity import CustomerSummary, InteractionResolved
from omnirouter_shared.contracts.interactions import InteractionKind, InteractionReceived

DEFAULT_RATES = {Channel.VOICE: 60.0, Channel.WEBCHAT: 40.0, Channel.SMS: 20.0, Channel.EMAIL: 30.0}
DEFAULT_HANDLE = {Channel.VOICE: 300.0, Channel.WEBCHAT: 480.0, Channel.SMS: 600.0, Channel.EMAIL: 900.0}
DEFAULT_CAPACITY = {
    Channel.VOICE: 1,
    Channel.WEBCHAT: 3,
    Channel.SMS: 3,
    Channel.WHATSAPP: 3,
    Channel.MESSENGER: 3,
    Channel.EMAIL: 5,
}
_ADDRESS_KIND = {
    Channel.VOICE: AddressKind.PHONE,
    Channel.SMS: AddressKind.PHONE,
    Channel.MMS: AddressKind.PHONE,
    Channel.WHATSAPP: AddressKind.WHATSAPP,
    Channel.EMAIL: AddressKind.EMAIL,
}


@dataclass(frozen=True)
class Behaviour:
    """How simulated people act (means of exponential / log-normal distributions, in seconds)."""

    think_time: float = 4.0
    reject_rate: float = 0.02
    miss_rate: float = 0.01
    handle_times: dict[Channel, float] = field(default_factory=lambda: dict(DEFAULT_HANDLE))
    handle_sigma: float = 0.5
    wrapup_time: float = 20.0
    #: Customers on a live channel hang up after this (mean) if no agent has accepted yet.
    patience: float = 180.0
    away_time: float = 60.0
    bot_time: float = 45.0
    bot_handoff_rate: float = 0.6
    handoff_queue: str | None = None


def lognormal(rng: random.Random, mean: float, sigma: float) -> float:
    """A log-normal draw with the given mean (handling times are right-skewed, never negative)."""
    if mean <= 0:
        return 0.0
    mu = math.log(mean) - sigma * sigma / 2
    return rng.lognormvariate(mu, sigma)


def skills_in(config: RoutingConfig) -> list[str]:
    names: set[str] = set()
    for q in config.queues.values():
        names.update(q.required_skills, q.preferred_skills)
    for rule in config.intents:
        names.update(rule.required_skills)
        for lang in rule.languages.values():
            names.update(lang.skills)
    return sorted(names)


def generate_agents(config: RoutingConfig, count: int, bots: int, rng: random.Random) -> list[AgentUpserted]:
    skills = skills_in(config)
    agents = [
        AgentUpserted(
            agent_id=f"agent-{i:03d}",
            name=f"Agent {i}",
            skills={s: rng.randint(3, 9) for s in skills},
            capacity=dict(DEFAULT_CAPACITY),
        )
        for i in range(count)
    ]
    agents += [
        AgentUpserted(
            agent_id=f"bot-{i:02d}",
            name=f"Bot {i}",
            kind=AgentKind.BOT,
            capacity={c: 1000 for c in DEFAULT_CAPACITY},
        )
        for i in range(bots)
    ]
    return agents


def intent_phrases(config: RoutingConfig) -> list[str]:
    phrases: list[str] = []
    for rule in config.intents:
        for lang in rule.languages.values():
            phrases.extend(lang.keywords)
    return phrases


@dataclass(frozen=True)
class Arrival:
    at: datetime
    payload: InteractionResolved


def generate_arrivals(
    config: RoutingConfig,
    start: datetime,
    duration: float,
    rates_per_hour: dict[Channel, float],
    rng: random.Random,
    repeat_rate: float = 0.1,
) -> list[Arrival]:
    """Poisson arrivals per channel; a share of contacts come from customers seen before."""
    phrases = intent_phrases(config)
    raw: list[tuple[float, Channel]] = []
    for channel in sorted(rates_per_hour):
        rate = rates_per_hour[channel] / 3600.0
        if rate <= 0:
            continue
        t = rng.expovariate(rate)
        while t < duration:
            raw.append((t, channel))
            t += rng.expovariate(rate)
    raw.sort()
    arrivals = []
    customers: list[str] = []
    for n, (t, channel) in enumerate(raw):
        if customers and rng.random() < repeat_rate:
            customer = rng.choice(customers)
        else:
            customer = f"cust-{len(customers):05d}"
            customers.append(customer)
        text = f"question about {rng.choice(phrases)}" if phrases and rng.random() < 0.5 else "hello"
        when = start + timedelta(seconds=t)
        kind = _ADDRESS_KIND.get(channel, AddressKind.WEBCHAT)
        iid = f"sim-{n:06d}"
        payload = InteractionResolved(
            customer=CustomerSummary(customer_id=customer),
            interaction=InteractionReceived(
                interaction_id=iid,
                kind=InteractionKind.CALL if channel is Channel.VOICE else InteractionKind.MESSAGE,
                channel=channel,
                vendor=Vendor.INTERNAL,
                vendor_message_id=iid,
                sender=Address(kind=kind, value=f"{customer}@{channel.value}"),
                recipient=Address(kind=kind, value="business"),
                text=text,
                received_at=when,
            ),
        )
        arrivals.append(Arrival(when, payload))
    return arrivals
