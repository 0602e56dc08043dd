"""`make chaos` / `make chaos-short`: faults injected one after another into the suite under steady load
(signed Twilio SMS webhooks, simulated agents accepting and completing over WebSocket), with the
invariants of chaos/invariants.py checked after each fault.

Knobs (environment): CHAOS_SHORT=1 (the CI subset), CHAOS_FAULTS=a,b (names below), CHAOS_RATE (webhooks
per second, default 8), CHAOS_AGENTS (default 8), CHAOS_PAUSE_S (broker pause, default 10), CHAOS_OUT,
CHAOS_LOG_LEVEL (the services' LOG_LEVEL, default WARNING; INFO for a post-mortem).

Exit status: 0 every invariant held after every fault; 1 one broke; 2 the harness could not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from bench.agents import CAPACITY, DEFAULT_SKILLS
from bench.matching import FrameRecord
from bench.processes import Helper, helper
from bench.stack import StackError, load_env_file
from bench.webhooks import Signing
from chaos.invariants import AuditRow, Window, check_phase, delivered_tokens, read_audit, recovery
from chaos.load import Load
from chaos.proxy import CuttableProxy
from chaos.stack import ChaosStack

ROOT = Path(__file__).resolve().parent.parent
ALL_FAULTS = (
    "baseline",
    "kill9:channel-gateway",
    "kill9:identity-resolution",
    "kill9:routing",
    "kill9:agent-presence",
    "dual:identity-resolution",
    "dual:routing",
    "dual:agent-presence",
    "broker-pause",
    "postgres-restart",
    "ws-cut",
)
SHORT_FAULTS = ("kill9:routing", "kill9:channel-gateway", "broker-pause", "ws-cut")
PRE_S = 3.0
POST_S = 10.0  # load goes on this long after the fault ended, so recovery_s can be seen
DUAL_EXTRA_S = 10.0
DRAIN_TIMEOUT_S = 75.0


def say(msg: str) -> None:
    print(f"chaos | {msg}", flush=True)


@dataclass
class Phase:
    name: str
    window: Window | None = None
    ready_s: float | None = None
    notes: list[str] = field(default_factory=list)
    drained: bool = False


@dataclass
class Harness:
    stack: ChaosStack
    proxy: CuttableProxy
    load: Load
    pause_s: float
    phases: list[Phase] = field(default_factory=list)
    _restore: Callable[[], Awaitable[None]] | None = None

    async def audit(self) -> list[AuditRow]:
        conn = await asyncpg.connect(self.stack.database_url, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT type, coalesce(task_id, '') AS task_id, coalesce(agent_id, '') AS agent_id,"
                " inbox_partition, inbox_offset, event_id, payload::text AS payload FROM routing.decisions"
            )
        finally:
            await conn.close()
        return [
            AuditRow(
                r["type"],
                r["task_id"],
                r["agent_id"],
                r["inbox_partition"],
                r["inbox_offset"],
                r["event_id"],
                orjson.loads(r["payload"]),
            )  # fmt: skip
            for r in rows
        ]

    async def dump_presence(self, path: Path) -> None:
        """agent-presence's tasks and agents' state history, for a post-mortem (who held what, when)."""
        conn = await asyncpg.connect(self.stack.database_url, timeout=10)
        try:
            tasks = await conn.fetch(
                "SELECT 'task' AS kind, task_id, agent_id, state, assigned_at::text, completed_at::text,"
                " updated_at::text FROM presence.tasks ORDER BY assigned_at"
            )
            states = await conn.fetch(
                "SELECT 'state' AS kind, agent_id, state, status, reason, source, changed_at::text"
                " FROM presence.agent_state_history ORDER BY id"
            )
        finally:
            await conn.close()
        path.write_bytes(b"".join(orjson.dumps(dict(r)) + b"\n" for r in [*tasks, *states]))  # noqa: ASYNC240

    async def drained(self, timeout: float) -> bool:
        """Every answered message is in a routing decision and every task is closed (agents finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                facts = read_audit(await self.audit(), CAPACITY)
                wanted = {s.interaction_id for s in self.load.sends if s.ok_ns is not None}
                if wanted <= set(facts.tasks) and not facts.open_tasks:
                    return True
            await asyncio.sleep(1.0)
        return False

    # ---- faults -------------------------------------------------------------------------------
    async def kill_and_restart(self, phase: Phase, service: str) -> None:
        inst = self.stack.instances[(service, 0)]
        t0 = time.monotonic_ns()
        await self.stack.kill9(inst)
        await asyncio.sleep(1.0)
        await self.stack.spawn(inst)
        phase.ready_s = round(await self.stack.wait_ready([inst], 90), 2)
        phase.window = Window(t0, time.monotonic_ns())

    async def dual(self, phase: Phase, service: str) -> Callable[[], Awaitable[None]]:
        extra = await self.stack.add_instance(service)
        await self.stack.wait_ready([extra], 90)
        await asyncio.sleep(3.0)  # the group rebalances over both instances
        # Desktops stay on instance 0 of agent-presence, so its other instance is the one to lose there.
        victim = extra if service == "agent-presence" else self.stack.instances[(service, 0)]
        survivor = self.stack.instances[(service, 0)] if victim is extra else extra
        phase.notes.append(f"killed {victim.name}, {survivor.name} carried on")

        async def fault() -> None:
            t0 = time.monotonic_ns()
            await self.stack.kill9(victim)
            phase.window = Window(t0, time.monotonic_ns())

        async def restore() -> None:
            if victim is not extra:
                await self.stack.spawn(victim)
                await self.stack.wait_ready([victim], 90)
                await self.stack.terminate(extra)

        self._restore = restore
        return fault

    async def broker_pause(self, phase: Phase) -> None:
        t0 = time.monotonic_ns()
        os.kill(self.stack.broker_pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(self.pause_s)
        finally:
            os.kill(self.stack.broker_pid, signal.SIGCONT)
        t1 = time.monotonic_ns()
        phase.ready_s = round(await self.stack.wait_ready(list(self._live()), 90), 2)
        phase.window = Window(t0, t1)

    async def postgres_restart(self, phase: Phase) -> None:
        t0 = time.monotonic_ns()
        await self.stack.restart_postgres(down_s=2.0)
        t1 = time.monotonic_ns()
        phase.ready_s = round(await self.stack.wait_ready(list(self._live()), 90), 2)
        phase.window = Window(t0, t1)

    async def ws_cut(self, phase: Phase) -> None:
        t0 = time.monotonic_ns()
        cut = 0
        for _ in range(3):
            cut += self.proxy.cut()
            await asyncio.sleep(1.0)
        phase.notes.append(f"{cut} desktop connections reset (3 cuts, 1 s apart)")
        phase.window = Window(t0, time.monotonic_ns())

    def _live(self) -> list[Any]:
        return [i for i in self.stack.instances.values() if i.proc is not None and i.proc.returncode is None]

    async def run_phase(self, name: str) -> Phase:
        phase = Phase(name)
        self.phases.append(phase)
        self._restore = None
        kind, _, service = name.partition(":")
        fault: Callable[[], Awaitable[None]] | None = None
        if kind == "dual":
            fault = await self.dual(phase, service)
        self.load.phase = name
        say(f"{name}: load at {self.load.rate:g}/s")
        self.load.start()
        await asyncio.sleep(PRE_S)
        if kind == "kill9":
            await self.kill_and_restart(phase, service)
        elif fault is not None:
            await fault()
        elif kind == "broker-pause":
            await self.broker_pause(phase)
        elif kind == "postgres-restart":
            await self.postgres_restart(phase)
        elif kind == "ws-cut":
            await self.ws_cut(phase)
        elif kind == "baseline":
            now = time.monotonic_ns()
            phase.window = Window(now, now)
        else:
            raise StackError(f"unknown fault {name!r}; known: {', '.join(ALL_FAULTS)}")
        # A killed group member keeps its partitions until its session times out: give that time too.
        await asyncio.sleep(POST_S + (DUAL_EXTRA_S if kind == "dual" else 0.0))
        await self.load.pause()
        await self.load.drain()
        phase.drained = await self.drained(DRAIN_TIMEOUT_S)
        if not phase.drained:
            phase.notes.append(f"not drained within {DRAIN_TIMEOUT_S:.0f} s")
        if self._restore is not None:
            await self._restore()
        sent = [s for s in self.load.sends if s.phase == name]
        say(f"{name}: {len(sent)} webhooks, {sum(s.ok_ns is not None for s in sent)} answered 2xx, "
            f"drained={phase.drained}, ready after {phase.ready_s} s")  # fmt: skip
        return phase


async def start_agents(stack: ChaosStack, proxy: CuttableProxy, run_id: str, count: int, out: Path) -> Any:
    args = [
        "--presence", f"http://127.0.0.1:{proxy.port}", "--count", str(count), "--run-id", run_id,
        "--out", str(out), "--skills", ",".join(DEFAULT_SKILLS), "--think-ms", "100", "--handle-ms", "300",
    ]  # fmt: skip
    return helper("agents", "bench.agents", args, stack.env, stack.log_dir / "agents.log")


def evaluate(h: Harness, frames: list[FrameRecord], rows: list[AuditRow]) -> list[dict[str, Any]]:
    facts = read_audit(rows, CAPACITY)
    delivered = delivered_tokens(frames)
    token_of = {s.interaction_id: s.token for s in h.load.sends}
    out = []
    for phase in h.phases:
        sent = [s for s in h.load.sends if s.phase == phase.name]
        verdicts = check_phase(sent, delivered, facts, token_of)
        rec = recovery(sent, delivered, phase.window) if phase.window else {}
        out.append(
            {
                "fault": phase.name,
                "webhooks": len(sent),
                "answered_2xx": sum(s.ok_ns is not None for s in sent),
                "redeliveries": sum(s.redelivery for s in sent),
                "ready_after_s": phase.ready_s,
                "drained": phase.drained,
                **rec,
                "invariants": {k: v.as_dict() for k, v in verdicts.items()},
                "ok": phase.drained and all(v.ok for v in verdicts.values()),
                "notes": phase.notes,
            }
        )
    return out


def table(results: list[dict[str, Any]]) -> str:
    names = ("answered", "delivered_once", "no_double_offer", "capacity", "offers_settled")
    head = (
        f"{'fault':<27} {'sent':>5} {'2xx':>5} {'retried':>7} {'ready s':>7} {'recov s':>7} {'max lat':>7}  "
        + "  ".join(f"{n:<15}" for n in names)
    )
    lines = [head, "-" * len(head)]
    for r in results:
        cells = []
        for n in names:
            v = r["invariants"][n]
            cells.append(f"{'ok' if v['ok'] else 'BROKEN x' + str(v['violations']):<15}")
        ready = "-" if r["ready_after_s"] is None else f"{r['ready_after_s']:.1f}"
        recov = "n/r" if r.get("recovery_s", 0) is None else f"{r.get('recovery_s', 0):.1f}"
        lines.append(
            f"{r['fault']:<27} {r['webhooks']:>5} {r['answered_2xx']:>5} {r.get('webhooks_retried', 0):>7} "
            f"{ready:>7} {recov:>7} {r.get('max_latency_s', 0):>7.1f}  " + "  ".join(cells)
        )
        for n in names:
            for ex in r["invariants"][n]["examples"]:
                lines.append(f"    {n}: {ex}")
        if not r["drained"]:
            lines.append("    not drained: tasks still open or messages not routed at the end of the phase")
    return "\n".join(lines)


async def chaos(faults: list[str], rate: float, agents: int, pause_s: float, out_dir: Path) -> int:
    run_id = secrets.token_hex(3)
    env = {
        **load_env_file(ROOT / "deploy" / "config" / "dev.env"),
        **os.environ,
        "LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
    }
    stack = ChaosStack(ROOT / ".data" / f"chaos-{run_id}", out_dir / "logs", env, f"chaos{run_id}.")
    proxy: CuttableProxy | None = None
    frames_path = out_dir / "frames.jsonl"  # the desktops' frames, kept for a post-mortem
    started = time.monotonic()
    try:
        say("starting the broker, PostgreSQL and the four services")
        await stack.start()
        proxy = CuttableProxy(stack.instances[("agent-presence", 0)].port)
        await proxy.start()
        signing = Signing.from_env(stack.env, int(time.time()))
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            load = Load(http, stack.url("channel-gateway"), signing, run_id, rate)
            h = Harness(stack, proxy, load, pause_s)
            try:
                agents_cm = await start_agents(stack, proxy, run_id, agents, frames_path)
                async with agents_cm as agents_proc:
                    assert isinstance(agents_proc, Helper)
                    await agents_proc.wait_ready(60)
                    say(f"{agents} agents connected; faults: {', '.join(faults)}")
                    for name in faults:
                        await h.run_phase(name)
                    await agents_proc.stop()
                rows = await h.audit()
                await h.dump_presence(out_dir / "presence.jsonl")
            finally:
                await load.cancel()  # a phase that failed leaves deliveries in flight
        frames = [FrameRecord.from_json(orjson.loads(x)) for x in frames_path.read_bytes().splitlines() if x]
        # Kept for a post-mortem when an invariant breaks: routing's decisions as recorded.
        (out_dir / "audit.jsonl").write_bytes(b"".join(orjson.dumps(r.__dict__) + b"\n" for r in rows))
        results = evaluate(h, frames, rows)
        delivered = delivered_tokens(frames)
        (out_dir / "sends.jsonl").write_bytes(  # per webhook, for a post-mortem of recovery_s
            b"".join(
                orjson.dumps({**s.__dict__, "delivered_ns": delivered.get(s.token)}) + b"\n"
                for s in sorted(h.load.sends, key=lambda s: s.first_ns)
            )
        )
    except (StackError, RuntimeError, OSError) as exc:
        say(f"the harness could not run: {exc}")
        return 2
    finally:
        if proxy is not None:
            await proxy.stop()
        await stack.stop()
    ok = all(r["ok"] for r in results)
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
        "rate": rate,
        "agents": agents,
        "broker_pause_s": pause_s,
        "elapsed_s": round(time.monotonic() - started, 1),
        "ok": ok,
        "faults": results,
    }
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - the run is over
    (out_dir / "latest.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    text = table(results)
    (out_dir / "latest.txt").write_text(text + "\n")
    print(text, flush=True)
    say(f"{'all invariants held' if ok else 'INVARIANTS BROKEN'}; report: {out_dir / 'latest.json'} "
        f"({report['elapsed_s']} s)")  # fmt: skip
    return 0 if ok else 1


def main() -> int:
    short = os.environ.get("CHAOS_SHORT", "") in ("1", "true", "yes")
    spec = os.environ.get("CHAOS_FAULTS", "")
    faults = [f.strip() for f in spec.split(",") if f.strip()] or list(SHORT_FAULTS if short else ALL_FAULTS)
    unknown = [f for f in faults if f not in ALL_FAULTS]
    if unknown:
        print(f"unknown fault(s) {unknown}; known: {', '.join(ALL_FAULTS)}", file=sys.stderr)
        return 2
    rate = float(os.environ.get("CHAOS_RATE", "8"))
    agents = int(os.environ.get("CHAOS_AGENTS", "8"))
    pause_s = float(os.environ.get("CHAOS_PAUSE_S", "10"))
    out_dir = Path(os.environ.get("CHAOS_OUT", str(ROOT / "chaos" / "results")))
    try:
        return asyncio.run(chaos(faults, rate, agents, pause_s, out_dir))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
