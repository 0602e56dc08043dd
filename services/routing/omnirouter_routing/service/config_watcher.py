"""Hot reload of ROUTING_CONFIG: poll the file, validate, and hand a valid new configuration over.

A file that fails validation is refused with every problem logged by its path in the YAML; the running
configuration stays in force (and ``omni_routing_config_reloads_total{result="invalid"}`` counts it).
Polling the modification time (not inotify) also follows Kubernetes ConfigMap updates, which swap a
symlink under the mounted file.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from omnirouter_routing import metrics
from omnirouter_routing.config import ConfigError, RoutingConfig, load_config
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

Stamp = tuple[int, int] | None


def _stamp(path: Path) -> Stamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class ConfigWatcher:
    def __init__(
        self,
        path: Path,
        interval_s: float,
        current: RoutingConfig,
        apply: Callable[[RoutingConfig], Awaitable[None]],
    ) -> None:
        self._path = path
        self._interval = interval_s
        self._current = current
        self._apply = apply
        self._stamp: Stamp = _stamp(path)
        self.last_error: ConfigError | None = None

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()

    async def check(self) -> bool:
        """Reload if the file changed; True when a new configuration was applied."""
        stamp = await asyncio.to_thread(_stamp, self._path)
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        if stamp is None:
            log.warning(
                "routing configuration file is gone; keeping the running one", extra={"path": str(self._path)}
            )
            return False
        try:
            config = await asyncio.to_thread(load_config, self._path)
        except ConfigError as exc:
            self.last_error = exc
            metrics.CONFIG_RELOADS.labels("invalid").inc()
            log.error(
                "routing configuration refused; the previous one stays in force",
                extra={"path": str(self._path), "problems": exc.problems},
            )
            return False
        self.last_error = None
        if config == self._current:
            return False  # touched, not changed
        await self._apply(config)
        self._current = config
        metrics.CONFIG_RELOADS.labels("applied").inc()
        log.info(
            "routing configuration reloaded", extra={"path": str(self._path), "queues": sorted(config.queues)}
        )
        return True
