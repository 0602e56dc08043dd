"""routing as a process: `migrate`, then `serve` until ready, then SIGTERM exits cleanly; bad settings
and a bad configuration stop the start with the problem named."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from omnirouter_shared.devstack.ports import free_port
from tests.routing.integration.harness import ADMIN, wait_ready, write_config

pytestmark = pytest.mark.integration


async def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnirouter_routing",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, out.decode(errors="replace")


async def test_migrate_serve_and_sigterm(
    kafka_bootstrap: str,
    topic_prefix: str,
    make_database: Callable[[], Awaitable[str]],
    tmp_path: Path,
) -> None:
    url = await make_database()
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": url,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "OMNI_ADMIN_TOKEN": ADMIN,
        "HTTP_PORT": str(port),
        "HTTP_HOST": "127.0.0.1",
        "ROUTING_CONFIG": str(write_config(tmp_path / "routing.yaml")),
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "LOG_FORMAT": "text",
    }
    code, out = await _run({k: v for k, v in env.items() if k != "OMNI_ADMIN_TOKEN"}, "serve")
    assert code == 2 and "OMNI_ADMIN_TOKEN is required" in out
    (tmp_path / "bad.yaml").write_text("default_queue: nowhere\n", encoding="utf-8")
    code, out = await _run({**env, "ROUTING_CONFIG": str(tmp_path / "bad.yaml")}, "serve")
    assert code == 2 and "default_queue" in out

    code, out = await _run(env, "migrate")
    assert code == 0, out
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('routing.decisions')::text") == "routing.decisions"
    finally:
        await conn.close()

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "omnirouter_routing",
        "serve",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", timeout=40)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
