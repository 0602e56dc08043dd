"""The shared producer and consumer loop against the real broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition

from omnirouter_shared.contracts import new_envelope
from omnirouter_shared.contracts.routing import RoutingTick
from omnirouter_shared.kafka import Consumed, ConsumerLoop, EventProducer, Rejection
from omnirouter_shared.settings import ServiceSettings
from omnirouter_shared.topics import Topic


def _settings(bootstrap: str, prefix: str) -> ServiceSettings:
    return ServiceSettings(
        kafka_bootstrap_servers=bootstrap,
        topic_prefix=prefix,
        service_name="test",
        kafka_rebalance_timeout_ms=1000,
        kafka_session_timeout_ms=6000,
        shutdown_timeout_s=5,
    )


def _tick(i: int) -> bytes:
    from omnirouter_shared.contracts import encode_envelope

    return encode_envelope(
        new_envelope(
            RoutingTick(now=datetime(2026, 1, 1, 0, 0, i, tzinfo=UTC)), producer="t", event_id=f"e{i}"
        )
    )


async def _wait_for(pred, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _read_all(bootstrap: str, topic: str, expect: int) -> list:  # type: ignore[type-arg]
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list = []  # type: ignore[type-arg]
    try:
        deadline = asyncio.get_running_loop().time() + 15
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            for msgs in (await consumer.getmany(timeout_ms=200)).values():
                out.extend(msgs)
    finally:
        await consumer.stop()
    return out


async def test_poison_goes_to_dead_letter_with_reason_and_the_rest_is_handled(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    settings = _settings(kafka_bootstrap, topic_prefix)
    producer = EventProducer(settings)
    await producer.start()
    seen: list[str] = []
    failures = {"left": 2}

    async def handler(batch: Sequence[Consumed]) -> Sequence[Rejection]:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database briefly unavailable")
        rejected = []
        for item in batch:
            assert item.envelope is not None
            if item.envelope.event_id == "e3":
                rejected.append(Rejection(item, "business rule: tick 3 is cursed"))
            else:
                seen.append(item.envelope.event_id)
        return rejected

    loop = ConsumerLoop(
        settings, topics=[Topic.ROUTING_INBOX], group_id="g-dlq", handler=handler, producer=producer
    )
    try:
        for i in range(5):
            await producer.send_raw(Topic.ROUTING_INBOX, b"default", _tick(i))
        await producer.send_raw(Topic.ROUTING_INBOX, b"default", b"{not json")
        await loop.start()
        await _wait_for(lambda: len(seen) == 4)
        dlq = await _read_all(kafka_bootstrap, settings.topic(Topic.DEAD_LETTER), 2)
    finally:
        await loop.stop()
        await producer.stop()

    assert seen == ["e0", "e1", "e2", "e4"]  # after two transient failures, each handled once, in order
    reasons = sorted(dict(m.headers)["dlq.reason"].decode() for m in dlq)
    assert reasons[0].startswith("business rule")
    assert reasons[1].startswith("not JSON")
    assert all(
        dict(m.headers)["dlq.source.topic"].decode() == settings.topic(Topic.ROUTING_INBOX) for m in dlq
    )
    assert {m.value for m in dlq} >= {b"{not json"}


async def test_stop_commits_so_a_restart_does_not_redo_work(kafka_bootstrap: str, topic_prefix: str) -> None:
    settings = _settings(kafka_bootstrap, topic_prefix)
    producer = EventProducer(settings)
    await producer.start()
    seen: list[str] = []

    async def handler(batch: Sequence[Consumed]) -> Sequence[Rejection]:
        seen.extend(i.envelope.event_id for i in batch if i.envelope)
        return []

    try:
        for i in range(3):
            await producer.send_raw(Topic.ROUTING_INBOX, b"default", _tick(i))
        first = ConsumerLoop(
            settings, topics=[Topic.ROUTING_INBOX], group_id="g-restart", handler=handler, producer=producer
        )
        await first.start()
        await _wait_for(lambda: len(seen) == 3)
        assert first.assigned
        await first.stop()

        for i in range(3, 5):
            await producer.send_raw(Topic.ROUTING_INBOX, b"default", _tick(i))
        second = ConsumerLoop(
            settings, topics=[Topic.ROUTING_INBOX], group_id="g-restart", handler=handler, producer=producer
        )
        await second.start()
        await _wait_for(lambda: len(seen) == 5)
        await asyncio.sleep(0.5)
        await second.stop()
    finally:
        await producer.stop()
    assert seen == ["e0", "e1", "e2", "e3", "e4"]


async def test_producer_reports_an_unreachable_broker_quickly() -> None:
    from omnirouter_shared.devstack.ports import free_port

    settings = ServiceSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_request_timeout_ms=1000
    )
    producer = EventProducer(settings)
    assert not await producer.healthy()
    try:
        await asyncio.wait_for(producer.start(), timeout=10)
    except Exception as exc:  # aiokafka: KafkaConnectionError
        assert "connect" in str(exc).lower() or exc.__class__.__name__.startswith("Kafka")
    else:  # pragma: no cover - would mean something listens there
        await producer.stop()
        raise AssertionError("started against a closed port")


async def test_a_batch_held_back_whole_is_refetched_not_committed(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """A handler that holds back every partition of its batch (routing, for records fetched before a
    restore rewound the partition): nothing is committed, the loop survives and the records come again."""
    settings = _settings(kafka_bootstrap, topic_prefix)
    producer = EventProducer(settings)
    await producer.start()
    seen: list[str] = []
    held = {"left": 2}
    loop: ConsumerLoop | None = None

    async def handler(batch: Sequence[Consumed]) -> Sequence[Rejection]:
        assert loop is not None
        if held["left"]:
            held["left"] -= 1
            first = batch[0]
            loop.hold(TopicPartition(first.topic, first.partition), first.offset)
            return []
        seen.extend(i.envelope.event_id for i in batch if i.envelope)
        return []

    loop = ConsumerLoop(
        settings, topics=[Topic.ROUTING_INBOX], group_id="g-hold", handler=handler, producer=producer
    )
    try:
        for i in range(3):
            await producer.send_raw(Topic.ROUTING_INBOX, b"default", _tick(i))
        await loop.start()
        await _wait_for(lambda: len(seen) == 3)
        assert loop.alive and loop.healthy
    finally:
        await loop.stop()
        await producer.stop()
    assert held["left"] == 0
    assert seen == ["e0", "e1", "e2"]


async def test_start_does_not_wait_for_the_group_and_stop_does_not_wait_for_a_join() -> None:
    """A service must serve (and say it is not ready) while its consumer group is still forming: after a
    crash the group waits a session time-out for the dead member, which held start-up that long."""
    from omnirouter_shared.devstack.ports import free_port

    settings = ServiceSettings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", kafka_request_timeout_ms=1000
    )
    producer = EventProducer(settings)

    async def handler(batch: Sequence[Consumed]) -> Sequence[Rejection]:
        return []

    loop = ConsumerLoop(
        settings, topics=[Topic.ROUTING_INBOX], group_id="g-nojoin", handler=handler, producer=producer
    )
    await asyncio.wait_for(loop.start(), timeout=1.0)
    await asyncio.sleep(1.5)  # at least one failed attempt to join, retried
    assert loop.alive and not loop.assigned
    await asyncio.wait_for(loop.stop(), timeout=5.0)
    assert not loop.alive
