"""The suite as processes the harness can hurt: the embedded broker (its pid, for SIGSTOP/SIGCONT),
PostgreSQL (stopped and started again on the same port and data), and each service instance (kill -9,
restart on the same port, a second instance of a consumer). Built from bench/stack.py's pieces."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

from bench.stack import Infra, StackError, service_env
from omnirouter_shared.devstack.broker import EmbeddedBroker, start_broker
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.devstack.postgres import EmbeddedPostgres, start_postgres
from omnirouter_shared.devstack.services import SERVICES, run_migrations
from omnirouter_shared.kafka.admin import ensure_topics

MODULES = {name: module for name, module, _ in SERVICES}
DATABASE = "omnirouter_chaos"


@dataclass
class Instance:
    service: str
    index: int
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def name(self) -> str:
        return f"{self.service}#{self.index}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ChaosStack:
    data_dir: Path
    log_dir: Path
    base_env: dict[str, str]
    prefix: str
    broker: EmbeddedBroker | None = None
    pg: EmbeddedPostgres | None = None
    env: dict[str, str] = field(default_factory=dict)
    instances: dict[tuple[str, int], Instance] = field(default_factory=dict)
    _files: list[object] = field(default_factory=list)

    # ---- infrastructure -------------------------------------------------------------------------
    async def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.broker = start_broker(log_path=self.log_dir / "broker.log")
        self.pg = await asyncio.to_thread(start_postgres, self.data_dir / "postgres", None, fresh=True)
        conn = await asyncpg.connect(self.pg.url())
        try:
            await conn.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await conn.close()
        infra = Infra(self.broker.bootstrap, self.pg.url(DATABASE))
        ports = {name: free_port() for name, _, _ in SERVICES}
        self.env = service_env(self.base_env, infra, self.prefix, ports)
        await ensure_topics(infra.bootstrap, prefix=self.prefix)
        try:
            await run_migrations(self.env)
        except RuntimeError as exc:
            raise StackError(str(exc)) from exc
        for name, port in ports.items():
            self.instances[(name, 0)] = Instance(name, 0, port, self.log_dir / f"{name}-0.log")
        for inst in list(self.instances.values()):
            await self.spawn(inst)
        await self.wait_ready(list(self.instances.values()), 90)

    @property
    def broker_pid(self) -> int:
        assert self.broker is not None
        return self.broker.process.pid

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def url(self, service: str, index: int = 0) -> str:
        return self.instances[(service, index)].url

    async def restart_postgres(self, down_s: float) -> None:
        assert self.pg is not None
        pg = self.pg
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(down_s)
        self.pg = await asyncio.to_thread(start_postgres, pg.datadir, pg.port)

    # ---- service instances ----------------------------------------------------------------------
    async def spawn(self, inst: Instance) -> None:
        fh = open(inst.log, "ab")  # noqa: SIM115, ASYNC230 - harness set-up, closed in stop()
        self._files.append(fh)
        inst.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            MODULES[inst.service],
            "serve",
            env={
                **self.env,
                "HTTP_PORT": str(inst.port),
                "OMNI_INSTANCE_ID": f"{inst.service}-chaos{inst.index}",
            },
            stdout=fh,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )

    async def add_instance(self, service: str) -> Instance:
        index = 1 + max(i for (s, i) in self.instances if s == service)
        inst = Instance(service, index, free_port(), self.log_dir / f"{service}-{index}.log")
        self.instances[(service, index)] = inst
        await self.spawn(inst)
        return inst

    async def kill9(self, inst: Instance) -> None:
        if inst.proc is not None and inst.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(inst.proc.pid, signal.SIGKILL)
            await inst.proc.wait()

    async def terminate(self, inst: Instance, timeout: float = 20) -> None:
        if inst.proc is None or inst.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            inst.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(inst.proc.wait(), timeout=timeout)
        except TimeoutError:
            await self.kill9(inst)

    async def wait_ready(self, insts: list[Instance], timeout: float) -> float:
        """Seconds until every instance answers /readyz 200."""
        t0 = time.monotonic()
        pending = {i.name: i for i in insts}
        async with aiohttp.ClientSession() as http:
            while pending:
                for name, inst in list(pending.items()):
                    if inst.proc is not None and inst.proc.returncode is not None:
                        raise StackError(f"{name} exited with {inst.proc.returncode}:\n{tail(inst.log)}")
                    with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                        async with http.get(
                            f"{inst.url}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                        ) as r:
                            if r.status == 200:
                                del pending[name]
                if pending and time.monotonic() - t0 > timeout:
                    logs = "\n".join(f"--- {n}\n{tail(i.log)}" for n, i in pending.items())
                    raise StackError(f"not ready after {timeout:.0f}s: {', '.join(pending)}\n{logs}")
                await asyncio.sleep(0.2)
        return time.monotonic() - t0

    async def stop(self) -> None:
        for inst in self.instances.values():
            if inst.proc is not None and inst.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    inst.proc.send_signal(signal.SIGTERM)
        for inst in self.instances.values():
            await self.terminate(inst)
        for fh in self._files:
            fh.close()  # type: ignore[attr-defined]
        if self.broker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.broker.process.pid, signal.SIGCONT)
        if self.pg is not None:
            await asyncio.to_thread(self.pg.stop)
            shutil.rmtree(self.pg.datadir, ignore_errors=True)
        if self.broker is not None:
            self.broker.stop()


def tail(path: Path, chars: int = 2500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""
