"""The what-if report: per queue and overall service level, speed of answer, abandonment, occupancy."""

from __future__ import annotations

from typing import Any

from omnirouter_routing.simulate.runner import SimulationResult


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:5.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:6.1f}s"


def summary(result: SimulationResult) -> dict[str, Any]:
    queues = [q for q in result.stats.queues if q.entered or q.answered or q.abandoned or q.rejected_closed]
    answered = sum(q.answered for q in queues)
    abandoned = sum(q.abandoned for q in queues)
    within = sum(q.answered_within_threshold for q in queues)
    wait_total = sum((q.average_speed_of_answer or 0.0) * q.answered for q in queues)
    outcomes = answered + abandoned
    return {
        "simulated_seconds": (result.ended - result.started).total_seconds(),
        "contacts": result.contacts,
        "tasks": result.tasks_created,
        "answered": answered,
        "abandoned": abandoned,
        "unfinished": result.unfinished,
        "service_level": within / outcomes if outcomes else None,
        "average_speed_of_answer": wait_total / answered if answered else None,
        "abandonment_rate": abandoned / outcomes if outcomes else None,
        "occupancy": result.occupancy,
        "agents": result.humans,
        "bots": result.bots,
        "inputs": result.inputs,
        "decisions": result.decisions,
        "queues": [
            {
                "queue": q.queue,
                "entered": q.entered,
                "answered": q.answered,
                "abandoned": q.abandoned,
                "rejected_closed": q.rejected_closed,
                "service_level": q.service_level,
                "service_level_threshold": q.service_level_threshold,
                "average_speed_of_answer": q.average_speed_of_answer,
                "abandonment_rate": q.abandonment_rate,
                "missed_offers": q.missed_offers,
            }
            for q in queues
        ],
    }


def render(data: dict[str, Any]) -> str:
    lines = [
        f"simulated {data['simulated_seconds'] / 60:.1f} min: {data['contacts']} contacts -> {data['tasks']} tasks, "
        f"{data['agents']} agents, {data['bots']} bots ({data['inputs']} inputs, {data['decisions']} decisions)",
        "",
        f"{'queue':<16}{'entered':>8}{'answered':>9}{'abandon':>8}{'closed':>7}{'SL':>8}{'(thr)':>7}{'ASA':>9}"
        f"{'aband.':>8}",
    ]
    for q in data["queues"]:
        lines.append(
            f"{q['queue']:<16}{q['entered']:>8}{q['answered']:>9}{q['abandoned']:>8}{q['rejected_closed']:>7}"
            f"{_pct(q['service_level']):>8}"
            f"{q['service_level_threshold']:>6.0f}s{_secs(q['average_speed_of_answer']):>9}"
            f"{_pct(q['abandonment_rate']):>8}"
        )
    lines += [
        "",
        f"service level        {_pct(data['service_level'])}",
        f"average speed of ans {_secs(data['average_speed_of_answer'])}",
        f"abandonment          {_pct(data['abandonment_rate'])}",
        f"occupancy            {_pct(data['occupancy'])}",
        f"unfinished at end    {data['unfinished']}",
    ]
    return "\n".join(lines)
