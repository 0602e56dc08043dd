"""Poison records for one consumer group, and a reader of what it dead-lettered.

Every poison goes on the same key (so the same partition) as the valid event sent after it: the valid
event's effect then proves the consumer moved past all of them, not around them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer

from omnirouter_shared.contracts.envelope import Envelope, encode_envelope
from omnirouter_shared.kafka.producer import EventProducer
from omnirouter_shared.topics import Topic

GARBAGE = b"\x00\xff{not json at all\x80"


def poisons(sample: Envelope, *, tombstone: bool = True) -> list[tuple[str, bytes | None]]:
    """Garbage bytes; a valid envelope of an unknown type; a known type with a payload of the wrong
    shape; a tombstone (where a tombstone means nothing)."""
    valid = orjson.loads(encode_envelope(sample))
    unknown = {**valid, "event_id": f"{valid['event_id']}-unknown", "type": "no.such.event"}
    wrong = {**valid, "event_id": f"{valid['event_id']}-wrong", "payload": {"unexpected": [1, 2, 3]}}
    out: list[tuple[str, bytes | None]] = [
        ("garbage", GARBAGE),
        ("unknown type", orjson.dumps(unknown)),
        ("wrong schema", orjson.dumps(wrong)),
    ]
    if tombstone:
        out.append(("tombstone", None))
    return out


async def send_poisons(
    producer: EventProducer, topic: Topic, key: str | None, sample: Envelope, *, tombstone: bool = True
) -> list[tuple[str, bytes | None]]:
    sent = poisons(sample, tombstone=tombstone)
    await producer.send_raw_many([(topic, key, value, None) for _, value in sent])
    return sent


@dataclass
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: dict[str, str]


@dataclass
class DeadLetters:
    """Reads the (prefixed) dead-letter topic from its beginning."""

    bootstrap: str
    prefix: str
    seen: list[DeadLetter] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> DeadLetters:
        self._consumer = AIOKafkaConsumer(
            f"{self.prefix}{Topic.DEAD_LETTER}",
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            group_id=None,
        )
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._consumer is not None
        await self._consumer.stop()

    def of(self, group: str, topic: Topic) -> list[DeadLetter]:
        name = f"{self.prefix}{topic}"
        return [
            d for d in self.seen if d.headers["dlq.group"] == group and d.headers["dlq.source.topic"] == name
        ]

    async def wait_for(
        self, group: str, topic: Topic, count: int, timeout_s: float = 20.0
    ) -> list[DeadLetter]:
        assert self._consumer is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while len(self.of(group, topic)) < count and loop.time() < deadline:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                self.seen.extend(
                    DeadLetter(r.key, r.value, {k: v.decode() for k, v in r.headers or ()}) for r in records
                )
        found = self.of(group, topic)
        assert len(found) >= count, f"{group} dead-lettered {len(found)} of {count} from {topic}: {self.seen}"
        return found


def assert_dead_lettered(
    found: list[DeadLetter], sent: list[tuple[str, bytes | None]], key: str | None, group: str, topic: str
) -> None:
    """Each poison exactly once, with its bytes and key, the reason and where it came from."""
    assert [d.value for d in found] == [value for _, value in sent], (
        f"dead letters {[d.value for d in found]} vs sent {[label for label, _ in sent]}"
    )
    offsets = [int(d.headers["dlq.source.offset"]) for d in found]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), offsets
    for (label, _), d in zip(sent, found, strict=True):
        assert d.key == (key.encode() if key is not None else None), (label, d.key)
        assert d.headers["dlq.group"] == group
        assert d.headers["dlq.source.topic"] == topic
        assert d.headers["dlq.source.partition"].isdigit(), d.headers
        assert d.headers["dlq.reason"].strip(), f"{label}: no reason"
