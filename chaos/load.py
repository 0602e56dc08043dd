"""Steady signed Twilio SMS load with vendor retries: each message is posted at its time and, until it
is answered 2xx, posted again byte-identical every second (as Twilio does), up to a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from dataclasses import dataclass, field

import aiohttp

from bench.schedule import Arrival, Customer, Kind, phone_for
from bench.webhooks import Signing, build_request
from chaos.invariants import Sent
from omnirouter_shared.contracts.interactions import interaction_id_for

RETRY_EVERY_S = 1.0


@dataclass
class Load:
    """The open-loop sender of one run; ``phase`` labels what is sent from now on."""

    http: aiohttp.ClientSession
    gateway_url: str
    signing: Signing
    run_id: str
    rate: float
    give_up_s: float = 90.0
    seed: int = 9
    phase: str = "warmup"
    sends: list[Sent] = field(default_factory=list)
    _seq: int = 0
    _customers: int = 0
    _recent: list[tuple[Customer, Arrival]] = field(default_factory=list)
    _inflight: set[asyncio.Task[None]] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def start(self) -> None:
        self._stop.clear()
        self._runner = asyncio.ensure_future(self._run())

    async def pause(self) -> None:
        """Stop sending new messages; retries of unanswered ones go on."""
        self._stop.set()
        if self._runner is not None:
            await self._runner
            self._runner = None

    async def cancel(self) -> None:
        """Abandon everything in flight (the harness is giving up)."""
        self._stop.set()
        tasks = [*self._inflight, *([self._runner] if self._runner is not None else [])]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def drain(self) -> None:
        if self._inflight:
            await asyncio.gather(*list(self._inflight))

    def _next(self) -> tuple[Arrival, Customer]:
        r = self._rng.random()
        if r < 0.05 and self._recent:
            customer, first = self._rng.choice(self._recent[-50:])
            return Arrival(first.seq, 0.0, first.kind, customer.index, first.vendor_message_id,
                           first.token, first.text, True), customer  # fmt: skip
        if r < 0.30 and self._recent:
            customer = self._rng.choice(self._recent[-30:])[0]
        else:
            self._customers += 1
            index = 500_000 + self._customers
            customer = Customer(index, phone_for(index), 0, Kind.TWILIO_SMS)
        self._seq += 1
        token = f"bk{self.run_id}x{self._seq}"
        arrival = Arrival(self._seq, 0.0, Kind.TWILIO_SMS, customer.index,
                          f"SM{secrets.token_hex(16)}", token, f"chaos {self.phase} [{token}]")  # fmt: skip
        self._recent.append((customer, arrival))
        return arrival, customer

    async def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            arrival, customer = self._next()
            task = asyncio.ensure_future(self._deliver(arrival, customer, self.phase))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)

    async def _deliver(self, arrival: Arrival, customer: Customer, phase: str) -> None:
        req = build_request(arrival, customer, self.signing)
        first = time.monotonic_ns()
        deadline = time.monotonic() + self.give_up_s
        attempts = 0
        ok_ns: int | None = None
        while True:
            attempts += 1
            try:
                async with self.http.post(
                    self.gateway_url + req.path, data=req.body, headers=req.headers
                ) as r:
                    await r.read()
                    if 200 <= r.status < 300:
                        ok_ns = time.monotonic_ns()
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            if ok_ns is not None or time.monotonic() + RETRY_EVERY_S > deadline:
                break
            await asyncio.sleep(RETRY_EVERY_S)
        self.sends.append(
            Sent(
                phase,
                arrival.token,
                interaction_id_for("twilio", arrival.vendor_message_id),
                first,
                ok_ns,
                attempts,
                arrival.redelivery,
            )  # fmt: skip
        )
