"""The decisions consumer applies a batch as groups sharing no agent and no task, each in log order."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from omnirouter_presence.domain.frames import Decision
from omnirouter_presence.kafka_decisions import _groups


class _ByTaskId(BaseModel):
    task_id: str


class _Task(BaseModel):
    id: str


class _ByTask(BaseModel):
    task: _Task


def _item(n: int, agent: str, payload: BaseModel) -> Any:
    # The grouping only looks at the decision; the consumed record and envelope ride along.
    return (n, None, Decision(agent, {"n": n}, payload))


def test_independent_agents_are_separate_groups_and_one_agent_keeps_log_order() -> None:
    batch = [
        _item(0, "a", _ByTaskId(task_id="t1")),
        _item(1, "b", _ByTaskId(task_id="t2")),
        _item(2, "a", _ByTaskId(task_id="t3")),
    ]
    groups = [[i[0] for i in g] for g in _groups(batch)]
    assert sorted(groups) == [[0, 2], [1]]


def test_a_task_moving_between_agents_joins_their_groups_in_log_order() -> None:
    batch = [
        _item(0, "a", _ByTaskId(task_id="t1")),  # closed for a (transfer)
        _item(1, "c", _ByTaskId(task_id="t9")),
        _item(2, "b", _ByTask(task=_Task(id="t1"))),  # offered to b
        _item(3, "b", _ByTaskId(task_id="t1")),  # assigned to b
        _item(4, "d", _ByTaskId(task_id="t8")),
        _item(5, "d", _ByTask(task=_Task(id="t9"))),  # links d with c through t9
    ]
    groups = sorted([i[0] for i in g] for g in _groups(batch))
    assert groups == [[0, 2, 3], [1, 4, 5]]


def test_payload_without_a_task_groups_by_agent_only() -> None:
    class _Forced(BaseModel):
        status: str

    batch = [_item(0, "a", _Forced(status="away")), _item(1, "a", _ByTaskId(task_id="t1"))]
    assert [[i[0] for i in g] for g in _groups(batch)] == [[0, 1]]
