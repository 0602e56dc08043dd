"""The four services as real processes against the session's broker and a fresh database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.devstack.services import SERVICES

ROOT = Path(__file__).resolve().parents[2]


def _dev_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for raw in (ROOT / "deploy" / "config" / "dev.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            env[k] = v
    return env


@dataclass
class Suite:
    env: dict[str, str]
    ports: dict[str, int]
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def public_url(self) -> str:
        return self.env["OMNI_PUBLIC_URL"]

    def log_tail(self, service: str, chars: int = 3000) -> str:
        path = self.logs.get(service)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""


async def _migrate(env: dict[str, str]) -> None:
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
        assert proc.returncode == 0, f"{name} migrate failed: {out.decode()[-2000:]}"


async def _wait_ready(suite: Suite, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    pending = set(suite.ports)
    async with aiohttp.ClientSession() as http:
        while pending:
            for name in list(pending):
                proc = suite.procs[name]
                assert proc.returncode is None, f"{name} exited:\n{suite.log_tail(name)}"
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(
                        f"{suite.url(name)}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            pending.discard(name)
            if asyncio.get_running_loop().time() > deadline:
                tails = "\n".join(f"--- {n}\n{suite.log_tail(n)}" for n in pending)
                raise AssertionError(f"not ready after {timeout}s: {pending}\n{tails}")
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_suite(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, log_dir: Path, **extra_env: str
) -> AsyncIterator[Suite]:
    ports = {name: free_port() for name, _, _ in SERVICES}
    env = {
        **os.environ,
        **_dev_env(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": database_url,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "OMNI_PUBLIC_URL": f"http://127.0.0.1:{ports['channel-gateway']}",
        "ROUTING_CONFIG": str(ROOT / "deploy" / "config" / "routing.yaml"),
        "IDENTITY_URL": f"http://127.0.0.1:{ports['identity-resolution']}",
        "ROUTING_URL": f"http://127.0.0.1:{ports['routing']}",
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        # Tansu holds a new group's first join for the session time-out: keep it short in tests.
        "KAFKA_SESSION_TIMEOUT_MS": "2000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
        "LOG_FORMAT": "text",
        **extra_env,
    }
    await _migrate(env)
    suite = Suite(env=env, ports=ports)
    log_dir.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        for name, module, _ in SERVICES:
            log = log_dir / f"{name}.log"
            fh = open(log, "wb")  # noqa: SIM115 - closed in finally
            files.append(fh)
            suite.logs[name] = log
            suite.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                "serve",
                env={**env, "HTTP_PORT": str(ports[name]), "OMNI_INSTANCE_ID": f"{name}-e2e"},
                stdout=fh,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        await _wait_ready(suite)
        yield suite
    finally:
        for proc in suite.procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in suite.procs.items():
            try:
                await asyncio.wait_for(proc.wait(), timeout=20)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise AssertionError(f"{name} did not stop within 20 s of SIGTERM") from None
        for fh in files:
            fh.close()
