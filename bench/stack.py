"""The system under test as processes: the embedded broker and PostgreSQL (or external ones from
KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL), topics, migrations, and the four services, started the way
``tests/e2e/suite.py`` starts them. Everything started here is stopped on the way out, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.devstack.services import SERVICES, run_migrations
from omnirouter_shared.kafka.admin import ensure_topics

ROOT = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """The suite could not be started; the message says which part and shows its log."""


def load_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if path.exists():
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if line and not line.startswith("#") and "=" in line:
                k, _, v = line.partition("=")
                env[k.strip()] = v.strip()
    return env


@dataclass
class Infra:
    bootstrap: str
    database_url: str
    broker_pid: int | None = None
    postgres_pid: int | None = None


def _postmaster_pid(datadir: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((datadir / "postmaster.pid").read_text().splitlines()[0])
    return None


@contextlib.asynccontextmanager
async def infrastructure(env: dict[str, str], data_dir: Path, database: str) -> AsyncIterator[Infra]:
    broker = pg = None
    try:
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        else:
            from omnirouter_shared.devstack.broker import start_broker

            data_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - set-up
            broker = start_broker(log_path=data_dir / "broker.log")
            bootstrap = broker.bootstrap
        if env.get("DATABASE_URL"):
            database_url = env["DATABASE_URL"]
        else:
            from omnirouter_shared.devstack.postgres import start_postgres

            pg = start_postgres(data_dir / "postgres", fresh=True)
            conn = await asyncpg.connect(pg.url())
            try:
                await conn.execute(f'CREATE DATABASE "{database}"')
            finally:
                await conn.close()
            database_url = pg.url(database)
        yield Infra(
            bootstrap,
            database_url,
            broker.process.pid if broker else None,
            _postmaster_pid(pg.datadir) if pg else None,
        )
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.datadir, ignore_errors=True)
        if broker is not None:
            broker.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Services:
    env: dict[str, str]
    ports: dict[str, int]
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log_tail(self, service: str, chars: int = 2500) -> str:
        path = self.logs.get(service)
        return path.read_text(errors="replace")[-chars:] if path and path.exists() else ""


def service_env(base: dict[str, str], infra: Infra, prefix: str, ports: dict[str, int]) -> dict[str, str]:
    return {
        **base,
        "KAFKA_BOOTSTRAP_SERVERS": infra.bootstrap,
        "DATABASE_URL": infra.database_url,
        "OMNI_TOPIC_PREFIX": prefix,
        "OMNI_PUBLIC_URL": f"http://127.0.0.1:{ports['channel-gateway']}",
        "ROUTING_CONFIG": str(ROOT / "deploy" / "config" / "routing.yaml"),
        "IDENTITY_URL": f"http://127.0.0.1:{ports['identity-resolution']}",
        "ROUTING_URL": f"http://127.0.0.1:{ports['routing']}",
        "PRESENCE_URL": f"http://127.0.0.1:{ports['agent-presence']}",
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "LOG_FORMAT": "text",
    }


async def _wait_ready(services: Services, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(services.ports)
    async with aiohttp.ClientSession() as http:
        while pending:
            for name in sorted(pending):
                proc = services.procs[name]
                if proc.returncode is not None:
                    raise StackError(f"{name} exited with {proc.returncode}:\n{services.log_tail(name)}")
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with http.get(
                        f"{services.url(name)}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            pending.discard(name)
            if pending and loop.time() > deadline:
                tails = "\n".join(f"--- {n}\n{services.log_tail(n)}" for n in sorted(pending))
                raise StackError(f"not ready after {timeout:.0f}s: {', '.join(sorted(pending))}\n{tails}")
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def running_services(
    base_env: dict[str, str], infra: Infra, prefix: str, log_dir: Path, ready_timeout: float = 90
) -> AsyncIterator[Services]:
    ports = {name: free_port() for name, _, _ in SERVICES}
    env = service_env(base_env, infra, prefix, ports)
    await ensure_topics(infra.bootstrap, prefix=prefix)
    try:
        await run_migrations(env)
    except RuntimeError as exc:
        raise StackError(str(exc)) from exc
    services = Services(env, ports)
    log_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - set-up
    files = []
    try:
        for name, module, _ in SERVICES:
            log = log_dir / f"{name}.log"
            fh = open(log, "wb")  # noqa: SIM115, ASYNC230 - set-up, closed in finally
            files.append(fh)
            services.logs[name] = log
            services.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                module,
                "serve",
                env={**env, "HTTP_PORT": str(ports[name]), "OMNI_INSTANCE_ID": f"{name}-bench"},
                stdout=fh,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        await _wait_ready(services, ready_timeout)
        yield services
    finally:
        await stop_processes(list(services.procs.values()))
        for fh in files:
            fh.close()


async def stop_processes(procs: list[asyncio.subprocess.Process], timeout: float = 20) -> None:
    """SIGTERM (the services drain and commit), then SIGKILL to the whole process group if need be."""
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
