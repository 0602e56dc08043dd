"""`make bench`: the whole suite under an open-loop webhook load, against the bare ceiling of this machine.

1. infrastructure: the embedded broker and PostgreSQL (or KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL);
2. the bare ceiling (bench/ceiling.py) loaded closed-loop for BENCH_CEILING_S, before the services start
   so the two measurements do not share the CPU;
3. the four services, BENCH_AGENTS simulated agents (bench/agents.py), a warm-up message end to end;
4. BENCH_RATE signed webhooks per second for BENCH_DURATION seconds, open loop, then a grace period;
5. matching, the results (bench/results/latest.json, latency.png) and a table on stdout.

Exit status: 0 all delivered once; 1 something lost, duplicated or refused; 2 the suite could not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

from bench.agents import DEFAULT_SKILLS, skills_in_config
from bench.config import ROOT, BenchConfig
from bench.loadgen import CeilingStep, Planned, closed_loop, find_ceiling, new_session, open_loop
from bench.matching import FrameRecord, Outcome, match
from bench.processes import helper
from bench.report import format_table, plot_latency, write_json
from bench.resources import Sampler, rss_growth_pct, summarise
from bench.schedule import Arrival, Customer, Kind, build_schedule, phone_for
from bench.stack import Infra, Services, StackError, infrastructure, load_env_file, running_services
from bench.webhooks import Signing, build_request
from omnirouter_shared.contracts.interactions import interaction_id_for
from omnirouter_shared.devstack.ports import free_port

_VENDOR_OF = {
    Kind.TWILIO_SMS: "twilio",
    Kind.TWILIO_WHATSAPP: "twilio",
    Kind.TWILIO_VOICE: "twilio",
    Kind.META_WHATSAPP: "meta",
    Kind.TELEGRAM: "telegram",
}


CEILING_STEPS = 5
CEILING_MAX_CONCURRENCY = 512


def say(msg: str) -> None:
    print(f"bench | {msg}", flush=True)


@dataclass
class Run:
    cfg: BenchConfig
    run_id: str
    env: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    windows: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.cfg.out_dir


def plan_requests(arrivals: list[Arrival], customers: list[Customer], signing: Signing) -> list[Planned]:
    return [
        Planned(
            a,
            build_request(a, customers[a.customer], signing),
            interaction_id_for(_VENDOR_OF[a.kind], a.vendor_message_id),
        )
        for a in arrivals
    ]


async def measure_ceiling(run: Run, infra: Infra, sampler: Sampler) -> CeilingStep | None:
    cfg = run.cfg
    if cfg.ceiling_s <= 0:
        run.notes.append("ceiling skipped (BENCH_CEILING_S=0)")
        return None
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--port", str(port), "--bootstrap", infra.bootstrap, "--topic", f"bench{run.run_id}.ceiling"]
    async with helper("ceiling", "bench.ceiling", args, run.env, run.out / "logs" / "ceiling.log") as h:
        await h.wait_ready(30)
        sampler.add("ceiling", h.pid)
        arrivals, customers = build_schedule(
            rate=100, duration_s=10, run_id=run.run_id, seed=cfg.seed, calls=False
        )
        signing = Signing.from_env({**run.env, "OMNI_PUBLIC_URL": url}, int(time.time()))
        sms = [
            build_request(a, customers[a.customer], signing) for a in arrivals if a.kind is Kind.TWILIO_SMS
        ]
        step_s = max(1.0, cfg.ceiling_s / CEILING_STEPS)
        say(
            f"bare ceiling: closed loops from {cfg.ceiling_concurrency} concurrent, doubling, {step_s:.1f} s each"
        )
        async with new_session(CEILING_MAX_CONCURRENCY, cfg.timeout_s) as http:
            # A short untimed warm-up: connections and the producer's metadata, not the steady state.
            await closed_loop(http, url, sms, concurrency=4, duration_s=0.5)
            t0 = sampler.now_s()
            steps = await find_ceiling(
                http,
                url,
                sms,
                start_concurrency=cfg.ceiling_concurrency,
                max_concurrency=CEILING_MAX_CONCURRENCY,
                step_s=step_s,
            )
            run.windows["ceiling"] = (t0, sampler.now_s())
    run.results["ceiling_steps"] = [
        {
            "concurrency": s.concurrency,
            "rps": s.result.rps,
            "p99_ms": s.result.latency.p99_ms,
            "failed": s.result.failed,
        }
        for s in steps
    ]
    for s in steps:
        say(
            f"  {s.concurrency:>4} concurrent: {s.result.rps:,.0f} req/s, p99 {s.result.latency.p99_ms:.1f} ms"
        )
    best = max(steps, key=lambda s: s.result.rps)
    say(f"bare ceiling: {best.result.rps:,.0f} req/s at {best.concurrency} concurrent")
    return best


async def _has_route(http: aiohttp.ClientSession, url: str) -> bool:
    """An unsigned POST: 401/403 means the endpoint exists (and checks signatures), 404/405 that it does not."""
    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
        async with http.post(
            url, data=b"", headers={"Content-Type": "application/x-www-form-urlencoded"}
        ) as r:
            return r.status not in (404, 405)
    return False


def routing_skills(path: Path) -> list[str]:
    try:
        found = skills_in_config(yaml.safe_load(path.read_text()))
    except (OSError, yaml.YAMLError):
        found = set()
    return sorted(found | set(DEFAULT_SKILLS))


async def warm_up(
    http: aiohttp.ClientSession, services: Services, signing: Signing, agents_seen: asyncio.Event, run: Run
) -> None:
    """Send marked messages until one is offered: the whole path works before the clock starts."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    n = 0
    while loop.time() < deadline:
        token = f"bk{run.run_id}w{n}"
        arrival = Arrival(
            n, 0.0, Kind.TWILIO_SMS, 0, f"SM{secrets.token_hex(16)}", token, f"warm-up [{token}]"
        )
        customer = Customer(10_000_000 + n, phone_for(990_000 + n), 0, Kind.TWILIO_SMS)
        req = build_request(arrival, customer, signing)
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            async with http.post(
                services.url("channel-gateway") + req.path, data=req.body, headers=req.headers
            ) as r:
                await r.read()
                if r.status >= 300:
                    say(f"warm-up webhook answered {r.status}")
        n += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agents_seen.wait(), timeout=5)
            return
    raise StackError(
        "no warm-up message reached an agent within 60 s; see the services' logs in bench/results/logs"
    )


async def run_suite(run: Run, infra: Infra, sampler: Sampler) -> Outcome:
    cfg = run.cfg
    prefix = f"bench{run.run_id}."
    base_env = {**run.env, "LOG_LEVEL": run.env.get("LOG_LEVEL", cfg.log_level)}
    say("starting the four services")
    async with running_services(base_env, infra, prefix, run.out / "logs") as services:
        for name, proc in services.procs.items():
            sampler.add(name, proc.pid)
        signing = Signing.from_env(services.env, int(time.time()))
        async with new_session(cfg.max_inflight, cfg.timeout_s) as http:
            calls = await _has_route(http, services.url("channel-gateway") + "/webhooks/twilio/voice")
            if not calls:
                run.notes.append("the gateway has no /webhooks/twilio/voice: customers who call were skipped")
            arrivals, customers = build_schedule(
                rate=cfg.rate, duration_s=cfg.duration_s, run_id=run.run_id, seed=cfg.seed, calls=calls
            )
            plan = plan_requests(arrivals, customers, signing)
            frames_path = run.out / f"frames-{run.run_id}.jsonl"
            agent_args = [
                "--presence", services.url("agent-presence"), "--count", str(cfg.agents), "--run-id", run.run_id,
                "--out", str(frames_path), "--skills", ",".join(routing_skills(Path(services.env["ROUTING_CONFIG"]))),
                "--think-ms", str(cfg.think_ms), "--handle-ms", str(cfg.handle_ms),
            ]  # fmt: skip
            async with helper(
                "agents", "bench.agents", agent_args, services.env, run.out / "logs" / "agents.log"
            ) as agents:
                await agents.wait_ready(60)
                sampler.add("agents", agents.pid)
                say(f"{cfg.agents} agents connected and available; warming up")
                await warm_up(http, services, signing, agents.warm_seen, run)
                say(f"load: {cfg.rate:g}/s for {cfg.duration_s:g} s ({len(plan)} webhooks)")
                t0 = sampler.now_s()
                result = await open_loop(
                    http, services.url("channel-gateway"), plan, max_inflight=cfg.max_inflight
                )
                t_sent = sampler.now_s()
                await asyncio.sleep(cfg.grace_s)
                run.windows["load"] = (t0, t_sent)
                await agents.stop()
        if not frames_path.exists():
            raise StackError(f"the agents process wrote no frames; see {run.out / 'logs' / 'agents.log'}")
        frames = [
            FrameRecord.from_json(orjson.loads(line))
            for line in frames_path.read_bytes().splitlines()
            if line
        ]
        summary_path = frames_path.with_suffix(".summary.json")
        agent_summary = orjson.loads(summary_path.read_bytes()) if summary_path.exists() else {}
        summary_path.unlink(missing_ok=True)
        outcome = match(result.records, frames, start_ns=result.start_ns)
        if outcome.lost or outcome.duplicated:
            # Kept for the post-mortem: which frames carried a lost or doubled message.
            run.notes.append(f"frames kept for the post-mortem: {frames_path}")
        else:
            frames_path.unlink(missing_ok=True)
        elapsed = max(
            (max((r.done_ns for r in result.records), default=result.start_ns) - result.start_ns) / 1e9,
            cfg.duration_s,
        )
        run.results.update(
            accepted_rps=outcome.accepted / elapsed,
            scheduler_lag_p99_ms=result.lag.p99_ms,
            agent_frames=agent_summary.get("frames", {}),
            agent_errors=agent_summary.get("errors", {}),
            agent_disconnects=agent_summary.get("disconnects", 0),
        )
        return outcome


def assemble(
    run: Run, outcome: Outcome | None, ceiling: CeilingStep | None, sampler: Sampler
) -> dict[str, Any]:
    cfg = run.cfg
    o = outcome or Outcome()
    r = run.results
    ceiling_rps = ceiling.result.rps if ceiling else None
    accepted_rps = r.get("accepted_rps")
    processes: dict[str, dict[str, Any]] = {}
    for name, samples in sampler.samples.items():
        start, end = run.windows.get("ceiling" if name == "ceiling" else "load", (0.0, sampler.now_s()))
        usage = summarise(samples, start, end)
        if usage is None:
            continue
        entry: dict[str, Any] = usage.as_dict()
        if cfg.soak and name != "ceiling":
            load = [s for s in samples if start <= s.t_s <= end]
            rebased = [type(s)(s.t_s - start, s.cpu_pct, s.rss_bytes) for s in load]
            entry["rss_growth_pct"] = rss_growth_pct(rebased, cfg.warmup_s)
        processes[name] = entry
    # What each process did while the ceiling was measured: shows whether the handler, the broker or
    # the load generator itself was the bound on this machine.
    during_ceiling: dict[str, float] = {}
    if "ceiling" in run.windows:
        start, end = run.windows["ceiling"]
        for name, samples in sampler.samples.items():
            usage = summarise(samples, start, end)
            if usage is not None:
                during_ceiling[name] = round(usage.cpu_avg_pct, 1)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "mode": "soak" if cfg.soak else "load",
        "rate": cfg.rate,
        "duration_s": cfg.duration_s,
        "agents": cfg.agents,
        "think_ms": cfg.think_ms,
        "handle_ms": cfg.handle_ms,
        "machine": {"cpus": os.cpu_count(), "loadavg_at_start": r.get("loadavg_at_start")},
        "sent": o.sent,
        "accepted": o.accepted,
        "accepted_rps": accepted_rps,
        "refused": o.refused,
        "failed": o.sent - o.accepted - o.refused,
        "status_counts": o.status_counts,
        "interactions": o.interactions,
        "offered": o.offered,
        "delivered_as_message": o.delivered_as_message,
        "delivered_on_assign": o.delivered_on_assign,
        "p50_ms": o.offer_latency.p50_ms,
        "p95_ms": o.offer_latency.p95_ms,
        "p99_ms": o.offer_latency.p99_ms,
        "max_ms": o.offer_latency.max_ms,
        "message_p50_ms": o.message_latency.p50_ms,
        "message_p99_ms": o.message_latency.p99_ms,
        "lost": o.lost,
        "duplicated": o.duplicated,
        "reoffered": o.reoffered,
        "lost_examples": o.lost_examples,
        "duplicated_examples": o.duplicated_examples,
        "calls_accepted": o.calls_accepted,
        "calls_seen": o.calls_seen,
        "scheduler_lag_p99_ms": r.get("scheduler_lag_p99_ms"),
        "ceiling_rps": ceiling_rps,
        "ceiling_p99_ms": ceiling.result.latency.p99_ms if ceiling else None,
        "ceiling_concurrency": ceiling.concurrency if ceiling else None,
        "ceiling_steps": r.get("ceiling_steps", []),
        "ceiling_cpu_avg_pct": during_ceiling,
        "ratio": (accepted_rps / ceiling_rps) if accepted_rps and ceiling_rps else None,
        "agent_frames": r.get("agent_frames", {}),
        "agent_errors": r.get("agent_errors", {}),
        "agent_disconnects": r.get("agent_disconnects", 0),
        "processes": processes,
        "suite_ran": outcome is not None,
        "notes": run.notes,
    }


async def measure(cfg: BenchConfig) -> dict[str, Any]:
    """One run: results written to ``cfg.out_dir`` and printed, and returned."""
    run = Run(
        cfg, secrets.token_hex(3), {**load_env_file(ROOT / "deploy" / "config" / "dev.env"), **os.environ}
    )
    run.results["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    sampler = Sampler([])
    sampler.add("loadgen", os.getpid())
    sampler.start()
    outcome: Outcome | None = None
    ceiling: CeilingStep | None = None
    try:
        async with infrastructure(
            run.env, ROOT / ".data" / f"bench-{run.run_id}", "omnirouter_bench"
        ) as infra:
            sampler.add("broker", infra.broker_pid)
            sampler.add("postgres", infra.postgres_pid, tree=True)
            if infra.broker_pid is None:
                run.notes.append(f"external Kafka at {infra.bootstrap}: its CPU and memory are not measured")
            ceiling = await measure_ceiling(run, infra, sampler)
            try:
                outcome = await run_suite(run, infra, sampler)
            except (StackError, RuntimeError) as exc:
                say(f"the suite could not run: {exc}")
                first_lines = " ".join(line.strip() for line in str(exc).splitlines()[:2] if line.strip())
                run.notes.append(f"the suite could not run: {first_lines[:300]}")
    finally:
        await sampler.stop()
    results = assemble(run, outcome, ceiling, sampler)
    write_json(cfg.out_dir / "latest.json", results)
    title = (
        f"webhook -> offer, {cfg.rate:g}/s for {cfg.duration_s:g} s, {cfg.agents} agents ({results['date']})"
    )
    if outcome is not None and plot_latency(outcome.offer_points, cfg.out_dir / "latency.png", title):
        say(f"plot: {cfg.out_dir / 'latency.png'}")
    print(format_table(results), flush=True)
    say(f"results: {cfg.out_dir / 'latest.json'}")
    return results


def exit_status(results: dict[str, Any]) -> int:
    if not results["suite_ran"]:
        return 2
    if results["lost"] or results["duplicated"] or results["failed"] or results["refused"]:
        return 1
    return 0


async def bench(cfg: BenchConfig) -> int:
    return exit_status(await measure(cfg))


def main() -> int:
    cfg = BenchConfig.from_env(os.environ)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        return asyncio.run(bench(cfg))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
