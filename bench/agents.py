"""Simulated agents, as their own process: create them, hold their WebSockets, work every offer.

    python -m bench.agents --presence URL --count 50 --run-id ID --out frames.jsonl --skills a,b

Each agent goes available, accepts an offer after a think time, completes the task after a handling
time and ends wrap-up. Every frame is timestamped with CLOCK_MONOTONIC (system-wide on Linux, so it
compares with the load generator's send times in another process) the moment it is read, and written to
``--out`` when the process is told to stop (SIGTERM): no file I/O while the clock is running.

Its stdout is a line protocol for the orchestrator: ``READY n`` once every agent is connected and
available, ``WARM token`` when a warm-up message is offered, ``FAIL reason`` before exiting non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.matching import FrameRecord, frame_marks, task_id_of

#: Every channel the suite knows, so capacity never limits which work the bench agents may take.
CAPACITY = {
    "sms": 6,
    "mms": 6,
    "whatsapp": 6,
    "telegram": 6,
    "messenger": 6,
    "instagram": 6,
    "email": 6,
    "webchat": 3,
    "voice": 1,
}
DEFAULT_SKILLS = ("billing", "general", "support", "sales", "technical", "orders", "accounts")
MAX_PROFICIENCY = 10
#: Error answers meaning the action is moot (the offer went away, the task is already done or not ours),
#: as opposed to "not recorded, try again" (broker or database unavailable).
_SETTLED_ERRORS = frozenset(
    {"offer_not_pending", "task_not_assigned", "task_not_wrapup", "not_found", "forbidden", "invalid_request"}
)
_SKILL_KEYS = re.compile(r"(^|_)skills$")


def skills_in_config(node: Any, found: set[str] | None = None) -> set[str]:
    """Every skill named in a routing configuration (keys of any ``*skills`` mapping, items of any
    ``*skills`` list), so the bench agents qualify for every queue whatever its requirements."""
    found = set() if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and _SKILL_KEYS.search(key):
                if isinstance(value, dict):
                    found.update(str(k) for k in value)
                elif isinstance(value, list):
                    found.update(str(v) for v in value if isinstance(v, str))
            skills_in_config(value, found)
    elif isinstance(node, list):
        for item in node:
            skills_in_config(item, found)
    return found


def token_pattern(run_id: str) -> str:
    """Tokens of this run: ``bk<run>x<seq>`` for measured messages, ``bk<run>w<n>`` for warm-up ones."""
    return rf"bk{re.escape(run_id)}[xw]\d+"


def agent_body(agent_id: str, skills: Iterable[str]) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": f"Bench {agent_id}",
        "skills": dict.fromkeys(sorted(set(skills)), MAX_PROFICIENCY),
        "capacity": dict(CAPACITY),
    }


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Tally:
    frames: Counter[str] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    disconnects: int = 0


@dataclass
class Agent:
    agent_id: str
    token: str
    records: list[FrameRecord]
    tally: Tally
    token_re: re.Pattern[str]
    think_s: float
    handle_s: float
    warm_prefix: str
    ws: aiohttp.ClientWebSocketResponse | None = None
    rescinded: set[str] = field(default_factory=set)
    working: set[str] = field(default_factory=set)
    work: set[asyncio.Task[None]] = field(default_factory=set)

    async def send(self, frame: dict[str, Any]) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.send_str(orjson.dumps(frame).decode())
            self.tally.sent[str(frame["type"])] += 1

    def on_frame(self, recv_ns: int, frame: dict[str, Any]) -> None:
        kind = str(frame.get("type", "?"))
        self.tally.frames[kind] += 1
        task_id = task_id_of(frame)
        tokens, ids = frame_marks(frame, self.token_re)
        self.records.append(
            FrameRecord(recv_ns, self.agent_id, kind, task_id, str(frame.get("offer_id") or ""), tokens, ids)
        )
        if kind == "offer":
            for t in tokens:
                if t.startswith(self.warm_prefix):
                    _say(f"WARM {t}")
            # A task re-offered after a rescind is a new offer: the old rescind must not cancel it.
            self.rescinded.discard(task_id)
            self._spawn(self._accept(task_id, str(frame.get("offer_id") or "")))
        elif kind == "assigned":
            # Work starts when presence says the task is ours (live, or re-sent on resume with its state),
            # like a desktop: a `complete` sent before that would be refused, and then never retried.
            if task_id not in self.working:
                self.working.add(task_id)
                self._spawn(self._work(task_id, wrapup_only=frame.get("state") == "wrapup"))
        elif kind == "rescind":
            self.rescinded.add(str(frame.get("offer_id") or task_id))
        elif kind == "error":
            code = str(frame.get("error") or frame.get("code") or "?")
            self.tally.errors[code] += 1
            if code not in _SETTLED_ERRORS:
                # The action was not recorded (broker or database unavailable...): ask for a resume,
                # which re-sends every live offer and active task, so it is done again.
                self._spawn(self._resume_later())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.work.add(task)
        task.add_done_callback(self.work.discard)

    async def _accept(self, task_id: str, offer_id: str) -> None:
        await asyncio.sleep(self.think_s)
        if (offer_id or task_id) in self.rescinded:
            return
        await self.send({"type": "accept", "task_id": task_id, "offer_id": offer_id or None})

    async def _work(self, task_id: str, *, wrapup_only: bool) -> None:
        try:
            if not wrapup_only:
                await asyncio.sleep(self.handle_s)
                await self.send({"type": "complete", "task_id": task_id})
            await self.send({"type": "wrapup_done", "task_id": task_id})
        finally:
            # A resume that still shows the task active (the frames above were lost or refused) works it
            # again; a second complete of a finished task is refused harmlessly.
            self.working.discard(task_id)

    async def _resume_later(self) -> None:
        await asyncio.sleep(1.0)
        await self.send({"type": "resume"})


async def create_agent(http: aiohttp.ClientSession, base: str, admin: str, body: dict[str, Any]) -> str:
    headers = {"Authorization": f"Bearer {admin}"}
    async with http.post(f"{base}/v1/agents", json=body, headers=headers) as r:
        if r.status == 201:
            return str((await r.json())["token"])
        if r.status != 409:
            raise RuntimeError(f"POST /v1/agents answered {r.status}: {(await r.text())[:300]}")
    async with http.post(f"{base}/v1/agents/{body['id']}/token", headers=headers) as r:
        if r.status not in (200, 201):
            raise RuntimeError(f"agent {body['id']} exists and its token could not be rotated: {r.status}")
        return str((await r.json())["token"])


async def hold(
    agent: Agent, http: aiohttp.ClientSession, ws_url: str, ready: asyncio.Event, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            async with http.ws_connect(
                ws_url, headers={"Authorization": f"Bearer {agent.token}"}, heartbeat=20
            ) as ws:
                agent.ws = ws
                await agent.send({"type": "status", "status": "available"})
                ready.set()
                beat = asyncio.ensure_future(_heartbeat(agent, stop))
                try:
                    async for msg in ws:
                        recv_ns = time.monotonic_ns()
                        if msg.type is not aiohttp.WSMsgType.TEXT:
                            break
                        agent.on_frame(recv_ns, orjson.loads(msg.data))
                finally:
                    beat.cancel()
        except (aiohttp.ClientError, OSError) as exc:
            agent.tally.errors[f"connect:{type(exc).__name__}"] += 1
        agent.ws = None
        if not stop.is_set():
            agent.tally.disconnects += 1
            await asyncio.sleep(0.5)


async def _heartbeat(agent: Agent, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(10)
        await agent.send({"type": "heartbeat"})


@dataclass
class Finished:
    code: int
    records: list[FrameRecord]
    tally: Tally


def write_out(out: Path, finished: Finished) -> None:
    out.write_bytes(b"".join(orjson.dumps(r.to_json()) + b"\n" for r in finished.records))
    t = finished.tally
    summary = {
        "frames": dict(t.frames),
        "sent": dict(t.sent),
        "errors": dict(t.errors),
        "disconnects": t.disconnects,
    }
    out.with_suffix(".summary.json").write_bytes(orjson.dumps(summary))


async def run(args: argparse.Namespace) -> Finished:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    admin = os.environ.get("OMNI_ADMIN_TOKEN", "")
    base = args.presence.rstrip("/")
    token_re = re.compile(token_pattern(args.run_id))
    warm_prefix = f"bk{args.run_id}w"
    records: list[FrameRecord] = []
    tally = Tally()
    skills = [s for s in args.skills.split(",") if s] or list(DEFAULT_SKILLS)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        ids = [f"bench-{args.run_id}-{i:04d}" for i in range(args.count)]
        gate = asyncio.Semaphore(8)

        async def make(agent_id: str) -> str:
            async with gate:
                return await create_agent(http, base, admin, agent_body(agent_id, skills))

        try:
            tokens = await asyncio.gather(*(make(i) for i in ids))
        except (RuntimeError, aiohttp.ClientError, OSError) as exc:
            _say(f"FAIL could not create the agents: {exc}")
            return Finished(2, records, tally)
        agents = [
            Agent(i, t, records, tally, token_re, args.think_ms / 1000, args.handle_ms / 1000, warm_prefix)
            for i, t in zip(ids, tokens, strict=True)
        ]
        ws_base = base.replace("http", "ws", 1)
        readies = [asyncio.Event() for _ in agents]
        holders = [
            asyncio.ensure_future(hold(a, http, f"{ws_base}/v1/agents/{a.agent_id}/ws", r, stop))
            for a, r in zip(agents, readies, strict=True)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=30)
        except TimeoutError:
            _say(f"FAIL only {sum(r.is_set() for r in readies)}/{len(agents)} agents connected in 30 s")
            stop.set()
        else:
            _say(f"READY {len(agents)}")
        await stop.wait()
        for a in agents:
            for w in list(a.work):
                w.cancel()
            if a.ws is not None:
                await a.ws.close()
        for h in holders:
            h.cancel()
        await asyncio.gather(*holders, return_exceptions=True)
    return Finished(0 if all(r.is_set() for r in readies) else 2, records, tally)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.agents", description=__doc__)
    parser.add_argument("--presence", required=True)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--skills", default="")
    parser.add_argument("--think-ms", type=float, default=100)
    parser.add_argument("--handle-ms", type=float, default=1000)
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    finished = asyncio.run(run(args))
    write_out(Path(args.out), finished)
    return finished.code


if __name__ == "__main__":
    sys.exit(main())
