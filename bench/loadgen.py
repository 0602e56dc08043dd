"""Load generators: the open loop that fires each planned webhook at its time, and the closed loop that
finds a handler's maximum.

Open loop: arrivals do not wait for answers, so a slow suite meets the same traffic as a fast one and its
queueing shows in the latency instead of silently lowering the rate (coordinated omission). In-flight
requests are bounded to protect the machine; an arrival that finds the bound reached is not sent and
counts as a failure ("refused").
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from bench.matching import SendRecord
from bench.schedule import Arrival
from bench.stats import LatencySummary
from bench.webhooks import SignedRequest


@dataclass(frozen=True)
class Planned:
    arrival: Arrival
    request: SignedRequest
    interaction_id: str


def new_session(max_inflight: int, timeout_s: float) -> aiohttp.ClientSession:
    # The connection limit equals the in-flight bound: no hidden queue inside the client.
    connector = aiohttp.TCPConnector(limit=max_inflight, limit_per_host=0, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s))


async def _post(session: aiohttp.ClientSession, url: str, req: SignedRequest) -> tuple[int, str]:
    try:
        async with session.post(url, data=req.body, headers=req.headers) as resp:
            await resp.read()
            return resp.status, ""
    except TimeoutError:
        return 0, "timeout"
    except (aiohttp.ClientError, OSError) as exc:
        return 0, type(exc).__name__


@dataclass
class OpenLoopResult:
    records: list[SendRecord]
    start_ns: int
    #: How late the scheduler fired arrivals (ms): the load generator's own lag, not the suite's.
    lag: LatencySummary


async def open_loop(
    session: aiohttp.ClientSession,
    base_url: str,
    plan: Sequence[Planned],
    *,
    max_inflight: int,
    lead_s: float = 0.2,
) -> OpenLoopResult:
    records: list[SendRecord] = []
    inflight: set[asyncio.Task[None]] = set()
    lags: list[float] = []
    start_ns = time.monotonic_ns() + int(lead_s * 1e9)

    async def fire(p: Planned, planned_ns: int) -> None:
        sent_ns = time.monotonic_ns()
        status, error = await _post(session, base_url + p.request.path, p.request)
        a = p.arrival
        records.append(
            SendRecord(
                a.seq, a.kind.value, a.token, p.interaction_id, a.redelivery, planned_ns, sent_ns,
                time.monotonic_ns(), status, error,
            )
        )  # fmt: skip

    for p in plan:
        planned_ns = start_ns + int(p.arrival.at_s * 1e9)
        delay = planned_ns - time.monotonic_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        now = time.monotonic_ns()
        lags.append((now - planned_ns) / 1e6)
        if len(inflight) >= max_inflight:
            a = p.arrival
            records.append(
                SendRecord(
                    a.seq,
                    a.kind.value,
                    a.token,
                    p.interaction_id,
                    a.redelivery,
                    planned_ns,
                    now,
                    now,
                    0,
                    "refused",
                )
            )
            continue
        task = asyncio.ensure_future(fire(p, planned_ns))
        inflight.add(task)
        task.add_done_callback(inflight.discard)
    if inflight:
        await asyncio.gather(*inflight)
    records.sort(key=lambda r: r.seq)
    return OpenLoopResult(records, start_ns, LatencySummary.of(lags))


@dataclass(frozen=True)
class ClosedLoopResult:
    ok: int
    failed: int
    elapsed_s: float
    latency: LatencySummary

    @property
    def rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0


async def closed_loop(
    session: aiohttp.ClientSession,
    base_url: str,
    requests: Sequence[SignedRequest],
    *,
    concurrency: int,
    duration_s: float,
) -> ClosedLoopResult:
    """Each of ``concurrency`` workers posts the next request as soon as its previous one answered."""
    ok = failed = 0
    latencies: list[float] = []
    cursor = 0
    start = time.monotonic()
    deadline = start + duration_s

    async def worker() -> None:
        nonlocal ok, failed, cursor
        while time.monotonic() < deadline:
            req = requests[cursor % len(requests)]
            cursor += 1
            t0 = time.monotonic_ns()
            status, _ = await _post(session, base_url + req.path, req)
            latencies.append((time.monotonic_ns() - t0) / 1e6)
            if 200 <= status < 300:
                ok += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ClosedLoopResult(ok, failed, time.monotonic() - start, LatencySummary.of(latencies))


#: A step that adds less than this share of throughput means the handler (or the machine) is saturated.
MIN_GAIN = 0.05


def keep_climbing(rates: Sequence[float], failed: int, *, min_gain: float = MIN_GAIN) -> bool:
    """Double the concurrency again while the last doubling still paid and nothing failed."""
    if failed or not rates:
        return not failed and not rates
    if len(rates) == 1:
        return True
    return rates[-1] > rates[-2] * (1 + min_gain)


@dataclass(frozen=True)
class CeilingStep:
    concurrency: int
    result: ClosedLoopResult


async def find_ceiling(
    session: aiohttp.ClientSession,
    base_url: str,
    requests: Sequence[SignedRequest],
    *,
    start_concurrency: int,
    max_concurrency: int,
    step_s: float,
) -> list[CeilingStep]:
    """Closed loops at doubling concurrency until throughput stops growing: a fixed concurrency would
    report the broker's round trip (little's law), not the handler's maximum."""
    steps: list[CeilingStep] = []
    concurrency = start_concurrency
    while concurrency <= max_concurrency:
        result = await closed_loop(session, base_url, requests, concurrency=concurrency, duration_s=step_s)
        steps.append(CeilingStep(concurrency, result))
        if not keep_climbing([s.result.rps for s in steps], result.failed):
            break
        concurrency *= 2
    return steps
