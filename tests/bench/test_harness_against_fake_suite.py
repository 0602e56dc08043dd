"""The load generator, the agents process and the matching together, against a stand-in whose losses
and double offers are known: the harness must count exactly those."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
from aiohttp import web

from bench.loadgen import Planned, new_session, open_loop
from bench.matching import FrameRecord, Outcome, match
from bench.processes import helper
from bench.schedule import build_schedule
from bench.webhooks import Signing, build_request
from omnirouter_shared.devstack.ports import free_port
from tests.bench.fake_suite import FakeSuite


async def _measure(fake: FakeSuite, tmp_path: Path, run_id: str) -> tuple[Outcome, FakeSuite]:
    port = free_port()
    runner = web.AppRunner(fake.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        arrivals, customers = build_schedule(rate=100, duration_s=1.5, run_id=run_id, calls=False)
        signing = Signing(base, "tw", "meta", "tg")
        plan = [
            Planned(a, build_request(a, customers[a.customer], signing), f"i-{a.vendor_message_id}")
            for a in arrivals
        ]
        frames_path = tmp_path / "frames.jsonl"
        args = ["--presence", base, "--count", "3", "--run-id", run_id, "--out", str(frames_path)]
        args += ["--think-ms", "20", "--handle-ms", "200"]
        env = {**os.environ, "OMNI_ADMIN_TOKEN": "admin"}
        async with helper("agents", "bench.agents", args, env, tmp_path / "agents.log") as agents:
            await agents.wait_ready(30)
            async with new_session(64, 5) as http:
                result = await open_loop(http, base, plan, max_inflight=64)
            await asyncio.sleep(0.8)
            assert await agents.stop() == 0, (tmp_path / "agents.log").read_text()
        frames = [FrameRecord.from_json(orjson.loads(line)) for line in frames_path.read_bytes().splitlines()]
        return match(result.records, frames, start_ns=result.start_ns), fake
    finally:
        await runner.cleanup()


async def test_a_clean_run_has_nothing_lost_or_duplicated_and_every_message_is_delivered(
    tmp_path: Path,
) -> None:
    outcome, fake = await _measure(FakeSuite("admin"), tmp_path, "c1ea7")
    o = outcome
    assert o.sent == o.accepted == 150
    assert (o.lost, o.duplicated) == (0, 0)
    assert o.interactions == len(fake.seen_ids)
    delivered = o.offered + o.delivered_as_message + o.delivered_on_assign
    assert delivered == o.interactions
    assert o.delivered_as_message > 0  # repeat customers joined their open conversation
    assert 0 < o.offer_latency.p99_ms < 1000


async def test_losses_and_double_offers_are_counted_exactly(tmp_path: Path) -> None:
    outcome, fake = await _measure(FakeSuite("admin", drop_every=9, double_every=7), tmp_path, "fa17")
    o = outcome
    assert fake.dropped and fake.doubled
    assert o.lost == len(fake.dropped)
    assert {e.split(" ")[0] for e in o.lost_examples} <= set(fake.dropped)
    assert o.duplicated == len(fake.doubled)
