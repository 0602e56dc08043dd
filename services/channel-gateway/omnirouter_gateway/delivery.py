"""Delivery workers: take due replies from the deliveries table, check consent, call the vendor, retry
with backoff, and record every final state with its status event (and dead-letter record) through the
outbox.

The workers are decoupled from the Kafka partitions on purpose: the reply consumer only writes rows and
commits, so a slow or failing vendor never holds up a partition, and any replica's workers can take
any row. Per-customer order is kept by the claim itself (only a customer's oldest pending reply is
eligible), not by the partition."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import aiohttp
import asyncpg

from omnirouter_gateway import deliveries, metrics
from omnirouter_gateway.deliveries import Claimed, OutboxRecord
from omnirouter_gateway.outbound.base import PermanentFailure, Sender, Sent, TransientFailure
from omnirouter_gateway.outbound.registry import choose_sender
from omnirouter_shared.contracts.common import Channel, Vendor
from omnirouter_shared.contracts.envelope import encode_envelope, new_envelope
from omnirouter_shared.contracts.replies import DeliveryState, ReplyDeliveryStatus, ReplyPurpose
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.observability.logging import get_logger
from omnirouter_shared.topics import Topic

log = get_logger(__name__)

REPLIES_GROUP = "channel-gateway-outbound"
#: A claim outlives the vendor call's own timeout by this much, so a slow call that still succeeds is
#: never attempted a second time by another worker.
LEASE_MARGIN_S = 2.0
#: A vendor asking for a longer pause than this would hold the customer's later replies too long.
MAX_RETRY_AFTER_S = 3600.0
SWEEP_INTERVAL_S = 2.0
#: A status row younger than this is still being published by the worker that staged it.
SWEEP_AGE_S = 5.0
_STATUS_NS = uuid.UUID("6f1d3c52-0b7e-4a51-9d0a-2f4f3f3b8c11")
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


def backoff_delay(
    attempt: int, base_s: float, cap_s: float, retry_after_s: float | None, rng: random.Random
) -> float:
    """Full jitter after the ``attempt``-th failure (1-based): uniform(0, min(cap, base * 2^(n-1))), so
    replicas retrying a recovering vendor spread out; never sooner than the vendor's Retry-After."""
    ceiling = min(cap_s, base_s * 2 ** max(0, attempt - 1))
    delay = rng.uniform(0.0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def status_event_id(reply_id: str, state: DeliveryState) -> str:
    """Deterministic: a status republished after a crash carries the same id, which consumers drop."""
    return str(uuid.uuid5(_STATUS_NS, f"{reply_id}:{state.value}"))


def status_record(
    claimed: Claimed,
    state: DeliveryState,
    *,
    service: str,
    vendor_message_id: str | None = None,
    error: str | None = None,
    now: datetime,
) -> OutboxRecord:
    reply = claimed.reply
    status = ReplyDeliveryStatus(
        reply_id=reply.reply_id,
        customer_id=reply.customer_id,
        channel=reply.channel,
        to=reply.to,
        state=state,
        vendor_message_id=vendor_message_id,
        attempts=claimed.attempts,
        error=error,
        occurred_at=now,
        text=reply.text,
    )
    env = new_envelope(
        status,
        producer=service,
        event_id=status_event_id(reply.reply_id, state),
        correlation_id=claimed.correlation_id or reply.reply_id,
        causation_id=claimed.event_id,
        routing_domain=claimed.routing_domain or "default",
        occurred_at=now,
    )
    return OutboxRecord(Topic.REPLIES_STATUS.value, reply.customer_id.encode(), encode_envelope(env))


def dead_letter_record(claimed: Claimed, reason: str, *, service: str, now: datetime) -> OutboxRecord:
    """The original reply record as it was consumed, with why and where from, like every dead letter."""
    value = claimed.source_value
    if value is None:
        value = encode_envelope(new_envelope(claimed.reply, producer=service, occurred_at=now))
    headers = (
        ("dlq.reason", reason[:1000].encode()),
        ("dlq.source.topic", (claimed.source_topic or Topic.REPLIES_OUTBOUND.value).encode()),
        ("dlq.source.partition", str(claimed.source_partition).encode()),
        ("dlq.source.offset", str(claimed.source_offset).encode()),
        ("dlq.group", REPLIES_GROUP.encode()),
    )
    key = claimed.source_key if claimed.source_key is not None else claimed.reply.customer_id.encode()
    return OutboxRecord(Topic.DEAD_LETTER.value, key, value, headers)


class DeliveryWorkers:
    """``concurrency`` workers per replica; ``wake`` after new rows so they need not wait for a poll."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: EventProducer,
        senders: Sequence[Sender],
        channel_vendors: Mapping[Channel, Vendor],
        *,
        service: str,
        concurrency: int,
        attempts: int,
        backoff_s: float,
        backoff_max_s: float,
        timeout_s: float,
        poll_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._senders = list(senders)
        self._channel_vendors = dict(channel_vendors)
        self._service = service
        self._concurrency = concurrency
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._backoff_max_s = backoff_max_s
        self._timeout_s = timeout_s
        self._lease_s = timeout_s + LEASE_MARGIN_S
        self._poll_s = poll_s
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._http: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if self._tasks:
            return
        self._http = aiohttp.ClientSession()
        self._tasks = [
            asyncio.create_task(self._run(), name=f"delivery-worker-{i}") for i in range(self._concurrency)
        ]

    async def stop(self) -> None:
        """Cancel the workers wherever they are: a claim cut short expires and is attempted again."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._http is not None:
            http, self._http = self._http, None
            await http.close()

    @property
    def alive(self) -> bool:
        return bool(self._tasks) and all(not t.done() for t in self._tasks)

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                claimed = await deliveries.claim(self._pool, self._lease_s)
            except _DB_ERRORS as exc:
                log.warning("could not claim deliveries; will retry", extra={"error": str(exc)})
                await asyncio.sleep(self._poll_s)
                continue
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)
                self._wake.clear()
                continue
            try:
                await self._attempt(claimed)
            except _DB_ERRORS as exc:
                # The claim expires and another attempt follows; nothing is lost.
                log.warning(
                    "could not record a delivery attempt; it will be retried after its lease",
                    extra={"reply_id": claimed.reply_id, "error": str(exc)},
                )
                await asyncio.sleep(self._poll_s)

    async def _attempt(self, claimed: Claimed) -> None:
        reply = claimed.reply
        # Consent governs contact the customer did not ask for. A SERVICE reply answers the customer's
        # own message in the conversation they opened (transactional, exempt from marketing opt-outs
        # under carrier, WhatsApp and anti-spam rules); refusing it would leave a customer who asked
        # for help without an answer. So only MARKETING replies are checked.
        if reply.purpose is ReplyPurpose.MARKETING and await deliveries.opted_out(
            self._pool, reply.to.key, reply.channel.value
        ):
            await self._finish(claimed, DeliveryState.REFUSED_OPT_OUT, error="the address opted out")
            return
        try:
            sender = choose_sender(reply, self._senders, self._channel_vendors)
        except PermanentFailure as exc:
            await self._finish(claimed, DeliveryState.FAILED, error=exc.reason)
            return
        assert self._http is not None
        vendor = sender.vendor.value
        try:
            sent: Sent = await sender.send(reply, self._http)
        except TransientFailure as exc:
            metrics.DELIVERY_ATTEMPTS.labels(vendor, "retry").inc()
            await self._transient(claimed, vendor, exc.reason, exc.retry_after_s)
            return
        except PermanentFailure as exc:
            metrics.DELIVERY_ATTEMPTS.labels(vendor, "permanent").inc()
            await self._finish(claimed, DeliveryState.FAILED, vendor=vendor, error=exc.reason)
            return
        except (asyncio.CancelledError, *_DB_ERRORS):
            raise
        except Exception as exc:  # noqa: BLE001 - a sender bug must not kill the worker; retried, then dead-lettered
            log.exception("sender failed unexpectedly", extra={"reply_id": reply.reply_id, "vendor": vendor})
            metrics.DELIVERY_ATTEMPTS.labels(vendor, "retry").inc()
            await self._transient(claimed, vendor, f"{vendor}: unexpected {type(exc).__name__}", None)
            return
        metrics.DELIVERY_ATTEMPTS.labels(vendor, "ok").inc()
        await self._finish(
            claimed, DeliveryState.SENT, vendor=vendor, vendor_message_id=sent.vendor_message_id
        )

    async def _transient(
        self, claimed: Claimed, vendor: str, reason: str, retry_after_s: float | None
    ) -> None:
        if claimed.attempts >= self._attempts:
            await self._finish(
                claimed,
                DeliveryState.DEAD_LETTERED,
                vendor=vendor,
                error=f"gave up after {claimed.attempts} attempts: {reason}",
            )
            return
        delay = backoff_delay(
            claimed.attempts, self._backoff_s, self._backoff_max_s, retry_after_s, self._rng
        )
        if await deliveries.retry_later(self._pool, claimed, delay, reason):
            log.info(
                "delivery will be retried",
                extra={"reply_id": claimed.reply_id, "attempt": claimed.attempts, "delay_s": round(delay, 3)},
            )

    async def _finish(
        self,
        claimed: Claimed,
        state: DeliveryState,
        *,
        vendor: str | None = None,
        vendor_message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        now = datetime.now(UTC)
        records = [
            status_record(
                claimed,
                state,
                service=self._service,
                vendor_message_id=vendor_message_id,
                error=error,
                now=now,
            )
        ]
        if state is DeliveryState.DEAD_LETTERED:
            records.insert(
                0, dead_letter_record(claimed, error or "undeliverable", service=self._service, now=now)
            )
        recorded = await deliveries.finish(
            self._pool,
            claimed,
            state.value,
            vendor=vendor,
            vendor_message_id=vendor_message_id,
            error=error,
            records=records,
        )
        if not recorded:
            # Our lease ran out and another worker took the reply over: its outcome is the one recorded.
            log.warning(
                "lost the claim on a delivery", extra={"reply_id": claimed.reply_id, "state": state.value}
            )
            return
        metrics.DELIVERIES.labels(claimed.reply.channel.value, state.value).inc()
        log.info(
            "delivery finished",
            extra={
                "reply_id": claimed.reply_id,
                "state": state.value,
                "attempts": claimed.attempts,
                "error": error,
            },
        )
        try:
            await deliveries.publish_outbox(self._pool, self._producer, reply_id=claimed.reply_id)
        except (BrokerUnavailable, *_DB_ERRORS) as exc:
            log.warning(
                "status left in the outbox for the sweeper",
                extra={"reply_id": claimed.reply_id, "error": str(exc)},
            )


async def sweep_outbox(
    pool: asyncpg.Pool, producer: EventProducer, interval_s: float = SWEEP_INTERVAL_S
) -> None:
    """Publish status events and dead letters that a crash or a broker outage left in the outbox."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            sent = await deliveries.publish_outbox(pool, producer, older_than_s=SWEEP_AGE_S)
            if sent:
                log.info("published delivery records left in the outbox", extra={"records": sent})
        except (BrokerUnavailable, *_DB_ERRORS) as exc:
            log.warning("delivery outbox sweep failed; will retry", extra={"error": str(exc)})
