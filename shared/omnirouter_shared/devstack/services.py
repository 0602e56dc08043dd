"""The four services as child processes, with their logs prefixed like `docker compose up`."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass

SERVICES: tuple[tuple[str, str, int], ...] = (
    ("channel-gateway", "omnirouter_gateway", 8080),
    ("agent-presence", "omnirouter_presence", 8081),
    ("identity-resolution", "omnirouter_identity", 8082),
    ("routing", "omnirouter_routing", 8083),
)

_COLOURS = ("\033[36m", "\033[35m", "\033[33m", "\033[32m")
_RESET = "\033[0m"


@dataclass
class Child:
    name: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None]


async def run_migrations(env: dict[str, str]) -> None:
    for name, module, _ in SERVICES:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            "migrate",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"migrations of {name} failed:\n{out.decode(errors='replace')}")


async def _pump(name: str, colour: str, stream: asyncio.StreamReader, width: int) -> None:
    prefix = f"{colour}{name:<{width}}{_RESET} | " if sys.stdout.isatty() else f"{name:<{width}} | "
    while line := await stream.readline():
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


async def start_services(env: dict[str, str], ports: dict[str, int]) -> list[Child]:
    width = max(len(n) for n, _, _ in SERVICES)
    children = []
    for i, (name, module, _) in enumerate(SERVICES):
        child_env = {**env, "HTTP_PORT": str(ports[name]), "OMNI_INSTANCE_ID": f"{name}-0"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            "serve",
            env=child_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own process group: Ctrl-C reaches us, and we stop the services in order.
            start_new_session=True,
        )
        assert proc.stdout is not None
        pump = asyncio.create_task(_pump(name, _COLOURS[i % len(_COLOURS)], proc.stdout, width))
        children.append(Child(name, proc, pump))
    return children


async def stop_services(children: list[Child], timeout: float = 20.0) -> None:
    for child in children:
        if child.process.returncode is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            await asyncio.wait_for(child.process.wait(), timeout=timeout)
        except TimeoutError:
            os.killpg(child.process.pid, signal.SIGKILL)
            await child.process.wait()
        await child.pump
