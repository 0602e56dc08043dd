"""The helper processes of a run (simulated agents, the bare ceiling) with their stdout line protocols.

Each runs in its own session (process group) and is stopped with SIGTERM, then SIGKILL to the group:
nothing the benchmark starts outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import ROOT


@dataclass
class Helper:
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str = ""
    warm: set[str] = field(default_factory=set)
    warm_seen: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode(errors="replace").strip()
            verb, _, rest = text.partition(" ")
            if verb == "READY":
                self.ready.set()
            elif verb == "WARM":
                self.warm.add(rest)
                self.warm_seen.set()
            elif verb == "FAIL":
                self.failure = rest
                self.ready.set()

    async def wait_ready(self, timeout: float) -> None:
        waiter = asyncio.ensure_future(self.ready.wait())
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            await asyncio.wait({waiter, exited}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            exited.cancel()
        if self.failure:
            raise RuntimeError(f"{self.name}: {self.failure}")
        if not self.ready.is_set():
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            state = f"exited with {self.proc.returncode}" if self.proc.returncode is not None else "not ready"
            raise RuntimeError(f"{self.name} {state} after {timeout:.0f}s\n{tail}")

    async def stop(self, timeout: float = 15) -> int:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout=timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        if self.reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader
        return self.proc.returncode or 0


@contextlib.asynccontextmanager
async def helper(
    name: str, module: str, args: Sequence[str], env: dict[str, str], log: Path
) -> AsyncIterator[Helper]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as err:  # noqa: ASYNC230 - set-up, before the clock runs
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")},
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    h = Helper(name, proc, log)
    h.reader = asyncio.ensure_future(h._read())
    try:
        yield h
    finally:
        await h.stop()
