"""Running a service process: logging, uvloop, the HTTP server, and a graceful SIGTERM.

On SIGTERM (Kubernetes) or Ctrl-C: readiness turns false at once, new work stops arriving after the
drain delay, then the app's cleanup contexts run in reverse order — consumers finish their batch in
flight, commit and leave their group; producers flush; pools close.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from omnirouter_shared.db.migrations import migrate
from omnirouter_shared.http.ops import READINESS
from omnirouter_shared.observability.logging import configure_logging, get_logger
from omnirouter_shared.settings import ServiceSettings, SettingsError

log = get_logger(__name__)

AppFactory = Callable[[], Awaitable[web.Application]]


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def serve(app: web.Application, settings: ServiceSettings, *, drain_delay_s: float = 0.0) -> None:
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=min(10.0, settings.shutdown_timeout_s)
    )
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port, reuse_address=True)
    await site.start()
    log.info("listening", extra={"host": settings.http_host, "port": settings.http_port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    if READINESS in app:
        app[READINESS].draining = True
    if drain_delay_s:
        await asyncio.sleep(drain_delay_s)
    await runner.cleanup()
    log.info("stopped")


S = TypeVar("S", bound=ServiceSettings)


def service_main(
    *,
    service: str,
    settings_cls: type[S],
    build_app: Callable[[S], Awaitable[web.Application]],
    schemas: Sequence[tuple[str, Path]],
    environ: dict[str, str],
    argv: Sequence[str] | None = None,
) -> int:
    """The one entry point shape of every service: ``serve`` (default) or ``migrate``."""
    parser = argparse.ArgumentParser(prog=f"omni-{service}")
    parser.add_argument("command", nargs="?", default="serve", choices=["serve", "migrate"])
    parser.add_argument(
        "--drain-delay",
        type=float,
        default=float(environ.get("OMNI_DRAIN_DELAY_S", "0")),
        help="seconds to keep serving after readiness turned false (Kubernetes: ~5)",
    )
    args = parser.parse_args(argv)
    try:
        settings = settings_cls.from_env(environ, service_name=service)
    except SettingsError as exc:
        print(f"omni-{service}: {exc}", file=sys.stderr)
        return 2
    configure_logging(service, settings.log_level, settings.log_format)
    _install_uvloop()
    if args.command == "migrate":

        async def run_migrations() -> None:
            for schema, path in schemas:
                applied = await migrate(settings.database_url, schema, path)
                log.info("migrations done", extra={"schema": schema, "applied": applied})

        asyncio.run(run_migrations())
        return 0

    async def run() -> None:
        app = await build_app(settings)
        await serve(app, settings, drain_delay_s=args.drain_delay)

    asyncio.run(run())
    return 0
