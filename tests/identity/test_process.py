"""The entry point as a process: `migrate`, then `serve` becomes ready and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable

import aiohttp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_migrate_then_serve_then_sigterm(
    kafka_bootstrap: str, topic_prefix: str, make_database: Callable[[], Awaitable[str]]
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": await make_database(),
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "OMNI_TOPIC_PREFIX": topic_prefix,
        "OMNI_ADMIN_TOKEN": "admin",
        "OMNI_API_TOKENS": "a,b",
        "IDENTITY_BUSINESS_ADDRESSES": "+18005550199,support@example.com",
        "HTTP_PORT": str(port),
        "KAFKA_REBALANCE_TIMEOUT_MS": "1000",
        "LOG_FORMAT": "text",
    }
    migrate = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_identity", "migrate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await migrate.communicate()
    assert migrate.returncode == 0, out.decode()[-2000:]

    serve = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_identity", "serve", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        ready = False
        async with aiohttp.ClientSession() as http:
            for _ in range(150):
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                        if r.status == 200:
                            ready = True
                            break
                assert serve.returncode is None
                await asyncio.sleep(0.2)
            assert ready
            async with http.get(
                f"http://127.0.0.1:{port}/v1/conflicts", headers={"Authorization": "Bearer b"}
            ) as r:
                assert r.status == 200
        serve.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(serve.communicate(), timeout=20)
        assert serve.returncode == 0, out.decode()[-2000:]
    finally:
        if serve.returncode is None:
            serve.kill()
            await serve.wait()


async def test_missing_settings_are_named() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMNI_ADMIN_TOKEN"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "omnirouter_identity", "migrate", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 2 and b"OMNI_ADMIN_TOKEN is required" in out
