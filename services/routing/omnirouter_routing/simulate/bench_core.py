"""Throughput of the routing core alone: ``python -m omnirouter_routing.simulate.bench_core``.

A steady contact-centre load (arrivals on five channels, agents accepting, completing and wrapping up,
periodic ticks, some rejections and abandons) is fed through one engine; only the time spent inside
``RoutingEngine.handle`` is counted. Input payloads are built before timing starts, except the agents'
replies, which depend on the decisions and are built outside the timed calls.
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel

from omnirouter_routing.config import RoutingConfig, load_config
from omnirouter_routing.core import RoutingEngine
from omnirouter_shared.contracts.agents import (
    AgentStatus,
    AgentStatusChanged,
    AgentUpserted,
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    WrapupDone,
)
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.identity import CustomerSummary, InteractionResolved
from omnirouter_shared.contracts.interactions import InteractionReceived
from omnirouter_shared.contracts.routing import RoutingTick, TaskAssigned, TaskOffered

_CHANNELS = (Channel.WEBCHAT, Channel.SMS, Channel.WHATSAPP, Channel.EMAIL, Channel.VOICE)
_TEXTS = ("my invoice is wrong", "the app is not working", "hello", "I want a refund", "price of upgrade")


def _arrival(i: int, customers: int, rng: random.Random, when: datetime) -> InteractionResolved:
    customer = f"c{rng.randrange(customers)}"
    channel = rng.choice(_CHANNELS)
    iid = f"i{i}"
    return InteractionResolved(
        customer=CustomerSummary(customer_id=customer),
        interaction=InteractionReceived(
            interaction_id=iid,
            channel=channel,
            vendor=Vendor.INTERNAL,
            vendor_message_id=iid,
            sender=Address(kind=AddressKind.PHONE, value=f"+1555{customer}"),
            recipient=Address(kind=AddressKind.PHONE, value="+18005550199"),
            text=rng.choice(_TEXTS),
            received_at=when,
        ),
    )


def run(events: int, agents: int, customers: int, seed: int, config: RoutingConfig) -> tuple[int, float]:
    rng = random.Random(seed)
    engine = RoutingEngine(config)
    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    skills = ("billing", "tech", "sales")
    setup: list[BaseModel] = []
    for a in range(agents):
        setup.append(
            AgentUpserted(
                agent_id=f"a{a}",
                name=f"a{a}",
                skills={s: rng.randint(1, 9) for s in skills},
                capacity={
                    Channel.VOICE: 1,
                    Channel.WEBCHAT: 3,
                    Channel.SMS: 3,
                    Channel.WHATSAPP: 3,
                    Channel.EMAIL: 5,
                },
            )
        )
        setup.append(AgentStatusChanged(agent_id=f"a{a}", status=AgentStatus.AVAILABLE))
    arrivals = [_arrival(i, customers, rng, t0) for i in range(events // 4)]
    tick = RoutingTick(now=t0)
    handled = 0
    busy = 0.0
    pending: list[tuple[str, BaseModel]] = [(f"s{i}", p) for i, p in enumerate(setup)]
    now = t0
    seq = 0
    arrival_iter = iter(arrivals)
    while handled < events:
        if not pending:
            nxt = next(arrival_iter, None)
            pending.append((f"x{seq}", nxt if nxt is not None else tick))
            if seq % 50 == 0:
                pending.append((f"t{seq}", tick))
        event_id, payload = pending.pop(0)
        seq += 1
        now += timedelta(milliseconds=250)
        start = time.perf_counter()
        decisions = engine.handle(event_id, payload, now)
        busy += time.perf_counter() - start
        handled += 1
        for d in decisions:
            p = d.payload
            if isinstance(p, TaskOffered):
                if rng.random() < 0.05:
                    reply: BaseModel = OfferRejected(
                        offer_id=p.offer_id, task_id=p.task.id, agent_id=p.agent_id
                    )
                else:
                    reply = OfferAccepted(offer_id=p.offer_id, task_id=p.task.id, agent_id=p.agent_id)
                pending.append((f"r{seq}/{d.event_id}", reply))
            elif isinstance(p, TaskAssigned):
                pending.append(
                    (f"c{seq}/{d.event_id}", TaskCompleted(task_id=p.task_id, agent_id=p.agent_id))
                )
                pending.append((f"w{seq}/{d.event_id}", WrapupDone(task_id=p.task_id, agent_id=p.agent_id)))
    return handled, busy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--config", help="routing YAML (default: built-in defaults)")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else RoutingConfig()
    handled, busy = run(args.events, args.agents, args.customers, args.seed, config)
    print(f"{handled} events in {busy:.3f} s inside the core: {handled / busy:,.0f} events/s")


if __name__ == "__main__":
    main()
