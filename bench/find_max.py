"""`make bench-max`: the highest sustainable rate, by whole runs at rising rates.

A rate is sustainable when nothing is lost, duplicated, refused or failed, the suite keeps up (accepted
per second within 3 % of the offered rate) and p99 webhook->offer stays within BENCH_P99_LIMIT_MS (the
issue's 50 ms). The rate doubles from BENCH_RATE until a run is not sustainable, then the gap is halved
until it is within 10 %. Each run is a fresh stack (``bench/run.py``), so one overloaded run cannot
leave a backlog that spoils the next; the bare ceiling is measured in the first run only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Mapping
from typing import Any

from bench.config import BenchConfig
from bench.report import write_json
from bench.run import measure, say

KEEP_UP = 0.97


def verdict(results: Mapping[str, Any], *, p99_limit_ms: float) -> str:
    """Empty when the run was sustainable, else why not."""
    if not results.get("suite_ran"):
        return "the suite did not run"
    for key in ("lost", "duplicated", "refused", "failed"):
        if results.get(key):
            return f"{results[key]} {key}"
    rate = float(results["rate"])
    accepted_rps = results.get("accepted_rps") or 0.0
    if accepted_rps < KEEP_UP * rate:
        return f"fell behind: {accepted_rps:.0f} accepted/s for {rate:g} offered"
    p99 = results.get("p99_ms")
    if p99 is None or p99 > p99_limit_ms:
        return f"p99 {p99} ms over {p99_limit_ms:g} ms"
    return ""


def next_rate(good: float | None, bad: float | None, last: float) -> float | None:
    """Double until the first failure, then bisect between the best good and the lowest bad rate."""
    if bad is None:
        return last * 2
    if good is None or bad - good <= max(0.1 * good, 10):
        return None
    return round((good + bad) / 2)


async def find_max(cfg: BenchConfig, p99_limit_ms: float, max_runs: int) -> dict[str, Any]:
    good: float | None = None
    bad: float | None = None
    ceiling: float | None = None
    runs: list[dict[str, Any]] = []
    rate: float | None = cfg.rate
    while rate is not None and len(runs) < max_runs:
        out = cfg.out_dir / "max" / f"rate-{rate:g}"
        results = await measure(
            cfg.model_copy(
                update={"rate": rate, "out_dir": out, "ceiling_s": cfg.ceiling_s if ceiling is None else 0}
            )
        )
        ceiling = ceiling or results.get("ceiling_rps")
        why = verdict(results, p99_limit_ms=p99_limit_ms)
        runs.append(
            {
                "rate": rate,
                "sustainable": not why,
                "why_not": why,
                **{
                    k: results.get(k)
                    for k in ("accepted_rps", "p50_ms", "p99_ms", "lost", "duplicated", "refused", "failed")
                },
            }
        )
        say(f"{rate:g}/s: {'sustainable' if not why else 'NOT sustainable: ' + why}")
        if not results.get("suite_ran"):
            break
        if why:
            bad = rate if bad is None else min(bad, rate)
        else:
            good = rate if good is None else max(good, rate)
        rate = next_rate(good, bad, rate)
    return {
        "max_sustainable_rate": good,
        "p99_limit_ms": p99_limit_ms,
        "duration_s": cfg.duration_s,
        "agents": cfg.agents,
        "ceiling_rps": ceiling,
        "ratio": (good / ceiling) if good and ceiling else None,
        "runs": runs,
    }


def main() -> int:
    cfg = BenchConfig.from_env(os.environ)
    p99_limit = float(os.environ.get("BENCH_P99_LIMIT_MS") or 50)
    max_runs = int(os.environ.get("BENCH_MAX_RUNS") or 8)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    summary = asyncio.run(find_max(cfg, p99_limit, max_runs))
    write_json(cfg.out_dir / "max.json", summary, required=("max_sustainable_rate", "ceiling_rps", "runs"))
    say(
        f"highest sustainable rate: {summary['max_sustainable_rate']} /s (results: {cfg.out_dir / 'max.json'})"
    )
    return 0 if summary["max_sustainable_rate"] else 1


if __name__ == "__main__":
    sys.exit(main())
