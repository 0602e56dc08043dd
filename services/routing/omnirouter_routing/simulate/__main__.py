"""``python -m omnirouter_routing.simulate``: what-if routing simulation (``make simulate ARGS=...``).

Examples:
  python -m omnirouter_routing.simulate                        # 1 h of generated traffic, 12 agents
  python -m omnirouter_routing.simulate --agents +2            # ... with two more agents
  python -m omnirouter_routing.simulate --escalate-after 30    # ... escalating after 30 s
  python -m omnirouter_routing.simulate --replay inbox.jsonl --agents +2
  python -m omnirouter_routing.simulate --set queues.billing.priority=8 --rate voice=120
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from omnirouter_routing.config import ConfigError, RoutingConfig, parse_config
from omnirouter_routing.simulate.replay import RecordingError, load_recording
from omnirouter_routing.simulate.report import render, summary
from omnirouter_routing.simulate.runner import Simulation
from omnirouter_routing.simulate.scenario import (
    DEFAULT_HANDLE,
    DEFAULT_RATES,
    Behaviour,
    generate_agents,
    generate_arrivals,
)
from omnirouter_shared.contracts.agents import AgentUpserted
from omnirouter_shared.contracts.common import Channel

DEFAULT_CONFIG = Path("deploy/config/routing.yaml")
DEFAULT_AGENTS = 12


class UsageError(ValueError):
    pass


def _channel_values(items: list[str], base: dict[Channel, float], what: str) -> dict[Channel, float]:
    values = dict(base)
    for item in items:
        name, _, raw = item.partition("=")
        try:
            values[Channel(name)] = float(raw)
        except ValueError:
            raise UsageError(
                f"--{what} {item!r}: expected CHANNEL=NUMBER, channels: {', '.join(c.value for c in Channel)}"
            ) from None
    return values


def _set_path(data: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node: Any = data
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value


def build_config(args: argparse.Namespace) -> RoutingConfig:
    path = Path(args.config) if args.config else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    data: dict[str, Any] = {}
    if path is not None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"--set {item!r}: expected PATH=VALUE (e.g. queues.billing.priority=5)")
        _set_path(data, key, yaml.safe_load(raw))
    if args.offer_timeout is not None:
        _set_path(data, "timers.offer_timeout", args.offer_timeout)
    if args.escalate_after is not None:
        # Shift each queue's escalation so its first step fires after the given wait, keeping the gaps.
        for queue in (data.get("queues") or {}).values():
            steps = (queue or {}).get("escalation") or []
            if steps:
                shift = args.escalate_after - float(steps[0].get("after", 0))
                for step in steps:
                    step["after"] = max(0.0, float(step.get("after", 0)) + shift)
    return parse_config(data, str(path or "<defaults>"))


def _resize(
    agents: list[AgentUpserted], spec: str | None, config: RoutingConfig, rng: random.Random
) -> list[AgentUpserted]:
    if spec is None:
        return agents
    humans = [a for a in agents if a.kind.value == "human"]
    others = [a for a in agents if a.kind.value != "human"]
    try:
        n = int(spec)
    except ValueError:
        raise UsageError(f"--agents {spec!r}: expected N, +N or -N") from None
    target = len(humans) + n if spec[:1] in "+-" else n
    if target < 0:
        raise UsageError(f"--agents {spec}: fewer than zero agents")
    if target <= len(humans):
        return humans[:target] + others
    template = humans[0] if humans else generate_agents(config, 1, 0, rng)[0]
    extra = [
        template.model_copy(update={"agent_id": f"extra-{i:03d}", "name": f"Extra {i}"})
        for i in range(target - len(humans))
    ]
    return humans + extra + others


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m omnirouter_routing.simulate",
        description="Replay recorded or generated traffic through the routing core and predict service level, "
        "speed of answer, abandonment and occupancy.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("Examples:", 1)[1] if __doc__ else None,
    )
    p.add_argument(
        "--config", help=f"routing YAML (default: {DEFAULT_CONFIG} if present, else built-in defaults)"
    )
    p.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="override a config value (YAML)"
    )
    p.add_argument(
        "--replay", metavar="FILE", help="JSON lines of inbox envelopes to replay instead of generating"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--agents", help=f"N, +N or -N human agents (generated default: {DEFAULT_AGENTS}; replay: roster)"
    )
    p.add_argument("--bots", type=int, default=0, help="bot agents (for bot-first queues)")
    p.add_argument("--escalate-after", type=float, help="seconds before each queue's first escalation step")
    p.add_argument("--offer-timeout", type=float, help="seconds an offer waits for an answer")
    p.add_argument("--duration", type=float, default=3600.0, help="seconds of generated arrivals")
    p.add_argument(
        "--drain", type=float, default=3600.0, help="max seconds to finish work after the last arrival"
    )
    p.add_argument(
        "--start", default="2026-03-02T09:00:00+00:00", help="simulated start (ISO 8601; business hours)"
    )
    p.add_argument(
        "--rate", action="append", default=[], metavar="CHANNEL=PER_HOUR", help="arrival rate per channel"
    )
    p.add_argument(
        "--handle", action="append", default=[], metavar="CHANNEL=SECONDS", help="mean handling time"
    )
    p.add_argument("--think", type=float, default=4.0, help="mean seconds an agent takes to answer an offer")
    p.add_argument("--reject-rate", type=float, default=0.02)
    p.add_argument("--miss-rate", type=float, default=0.01, help="share of offers never answered (time out)")
    p.add_argument("--wrapup", type=float, default=20.0, help="mean wrap-up seconds")
    p.add_argument("--patience", type=float, default=180.0, help="mean seconds a caller / chatter waits")
    p.add_argument("--tick", type=float, default=1.0, help="seconds between routing ticks")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = build_config(args)
    rng = random.Random(args.seed)
    behaviour = Behaviour(
        think_time=args.think,
        reject_rate=args.reject_rate,
        miss_rate=args.miss_rate,
        handle_times=_channel_values(args.handle, DEFAULT_HANDLE, "handle"),
        wrapup_time=args.wrapup,
        patience=args.patience,
    )
    if args.replay:
        rec = load_recording(args.replay)
        agents = rec.agents or generate_agents(config, DEFAULT_AGENTS, 0, rng)
        agents = _resize(agents, args.agents, config, rng)
        start, arrivals_end = rec.start, rec.end
        sim = Simulation(
            config,
            agents,
            rec.inputs,
            behaviour,
            args.seed,
            start,
            tick=args.tick,
            recorded_handle_times=rec.handle_times,
            simulate_abandonment=False,
        )
    else:
        start = datetime.fromisoformat(args.start)
        rates = _channel_values(args.rate, DEFAULT_RATES, "rate")
        arrivals = generate_arrivals(config, start, args.duration, rates, rng)
        agents = _resize(generate_agents(config, DEFAULT_AGENTS, args.bots, rng), args.agents, config, rng)
        arrivals_end = start + timedelta(seconds=args.duration)
        sim = Simulation(
            config, agents, [(a.at, a.payload) for a in arrivals], behaviour, args.seed, start, tick=args.tick
        )
    result = sim.run(arrivals_end, arrivals_end + timedelta(seconds=args.drain))
    return summary(result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        data = run(args)
    except (ConfigError, RecordingError, UsageError, OSError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(data, indent=2) if args.json else render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
