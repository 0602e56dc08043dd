"""A thin driver around the routing core for tests: numbered event ids, seconds since T0."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from omnirouter_routing.config import RoutingConfig, parse_config
from omnirouter_routing.core import Decision, RoutingEngine
from omnirouter_shared.contracts.agents import (
    OfferAccepted,
    OfferRejected,
    TaskCompleted,
    WrapupDone,
)
from omnirouter_shared.contracts.routing import RoutingTick, TaskOffered
from tests.routing.factories import agent, at, status

P = TypeVar("P", bound=BaseModel)


def config(**data: Any) -> RoutingConfig:
    return parse_config(data)


class Harness:
    def __init__(self, cfg: RoutingConfig | None = None) -> None:
        self.engine = RoutingEngine(cfg or RoutingConfig())
        self.seq = 0
        self.t = 0.0
        self.decisions: list[Decision] = []

    def send(self, payload: BaseModel, t: float | None = None) -> list[BaseModel]:
        if t is not None:
            self.t = t
        self.seq += 1
        out = self.engine.handle(f"ev-{self.seq}", payload, at(self.t))
        self.decisions.extend(out)
        return [d.payload for d in out]

    def tick(self, t: float) -> list[BaseModel]:
        return self.send(RoutingTick(now=at(t)), t)

    def online(self, agent_id: str, t: float | None = None, **kw: Any) -> list[BaseModel]:
        self.send(agent(agent_id, **kw), t)
        return self.send(status(agent_id), t)

    def accept(self, offer: TaskOffered, t: float | None = None) -> list[BaseModel]:
        return self.send(
            OfferAccepted(offer_id=offer.offer_id, task_id=offer.task.id, agent_id=offer.agent_id), t
        )

    def reject(self, offer: TaskOffered, t: float | None = None) -> list[BaseModel]:
        return self.send(
            OfferRejected(offer_id=offer.offer_id, task_id=offer.task.id, agent_id=offer.agent_id), t
        )

    def complete(self, task_id: str, agent_id: str, t: float | None = None, **kw: Any) -> list[BaseModel]:
        return self.send(TaskCompleted(task_id=task_id, agent_id=agent_id, **kw), t)

    def wrapup_done(self, task_id: str, agent_id: str, t: float | None = None) -> list[BaseModel]:
        return self.send(WrapupDone(task_id=task_id, agent_id=agent_id), t)


def of(decisions: list[BaseModel], kind: type[P]) -> list[P]:
    return [d for d in decisions if isinstance(d, kind)]


def one(decisions: list[BaseModel], kind: type[P]) -> P:
    found = of(decisions, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {decisions}"
    return found[0]
