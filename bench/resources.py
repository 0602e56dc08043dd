"""CPU and RSS per process, sampled each second with psutil (PostgreSQL as its whole process tree).

Summaries are pure functions over the samples, so the soak's "RSS growth after warm-up" is tested
without processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psutil

from bench.stats import percentile


@dataclass(frozen=True)
class Sample:
    t_s: float
    cpu_pct: float
    rss_bytes: int


@dataclass(frozen=True)
class Watched:
    name: str
    pid: int
    #: Count the children too (PostgreSQL's backends, checkpointer, WAL writer...).
    tree: bool = False


@dataclass
class Sampler:
    watched: list[Watched]
    interval_s: float = 1.0
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    _procs: dict[int, psutil.Process] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _t0: float = field(default_factory=time.monotonic)

    def _proc(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = psutil.Process(pid)
            proc.cpu_percent(None)  # the first reading only sets the baseline
        return proc

    def sample_once(self) -> None:
        now = time.monotonic() - self._t0
        for w in self.watched:
            try:
                root = self._proc(w.pid)
                members = [root, *(root.children(recursive=True) if w.tree else [])]
            except psutil.Error:
                continue
            cpu = 0.0
            rss = 0
            for p in members:
                with contextlib.suppress(psutil.Error):
                    proc = self._proc(p.pid)
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss
            self.samples.setdefault(w.name, []).append(Sample(now, cpu, rss))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            # Reading /proc for PostgreSQL's dozens of processes takes milliseconds: off the event loop
            # that also times the load generator's arrivals.
            await asyncio.to_thread(self.sample_once)

    def add(self, name: str, pid: int | None, *, tree: bool = False) -> None:
        if pid is not None:
            self.watched.append(Watched(name, pid, tree))

    def start(self) -> None:
        self._t0 = time.monotonic()
        self.sample_once()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def now_s(self) -> float:
        return time.monotonic() - self._t0


@dataclass(frozen=True)
class ProcessUsage:
    cpu_avg_pct: float
    cpu_max_pct: float
    rss_start_mb: float
    rss_end_mb: float
    rss_max_mb: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in self.__dict__.items()}


def summarise(samples: Sequence[Sample], start_s: float, end_s: float) -> ProcessUsage | None:
    """Usage within [start_s, end_s] (the load window); the first sample has no CPU reading yet."""
    window = [s for s in samples if start_s <= s.t_s <= end_s] or list(samples[-1:])
    if not window:
        return None
    cpu = [s.cpu_pct for s in window]
    mb = [s.rss_bytes / 2**20 for s in window]
    return ProcessUsage(sum(cpu) / len(cpu), max(cpu), mb[0], mb[-1], max(mb))


def rss_growth_pct(samples: Sequence[Sample], warmup_s: float, window_s: float = 30.0) -> float | None:
    """Growth of the median RSS of the last ``window_s`` over the median of the ``window_s`` right after
    warm-up; medians so a garbage-collection spike at either end does not decide the verdict."""
    if not samples:
        return None
    end = samples[-1].t_s
    first = [s.rss_bytes for s in samples if warmup_s <= s.t_s < warmup_s + window_s]
    last = [s.rss_bytes for s in samples if s.t_s > end - window_s and s.t_s >= warmup_s + window_s]
    if not first or not last:
        return None
    base = percentile(first, 50)
    return (percentile(last, 50) - base) / base * 100 if base else None
