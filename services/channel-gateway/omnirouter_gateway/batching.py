"""Coalesce concurrent small database calls into one statement per round trip.

At a thousand webhooks a second, one INSERT per webhook costs more in round trips than in work. A few
workers take whatever requests are queued, run them as one statement and answer each caller; under light
load a batch is one request and nothing waits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        workers: int = 4,
        max_batch: int = 500,
        name: str = "coalescer",
    ) -> None:
        self._run = run
        self._workers_n = workers
        self._max_batch = max_batch
        self._name = name
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if not self._workers:
            self._workers = [
                asyncio.create_task(self._work(), name=f"{self._name}-{i}") for i in range(self._workers_n)
            ]

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        while not self._queue.empty():
            _, fut = self._queue.get_nowait()
            if not fut.done():
                fut.set_exception(RuntimeError(f"{self._name} stopped"))

    async def submit(self, item: T) -> R:
        if not self._workers:
            # Not started (a test, or shutdown): run alone.
            return (await self._run([item]))[0]
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        return await fut

    async def _work(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if not live:
                continue
            try:
                results = await self._run([item for item, _ in live])
            except asyncio.CancelledError:
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(RuntimeError(f"{self._name} stopped"))
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
