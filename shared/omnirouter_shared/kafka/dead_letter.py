"""Dead-letter records: the original bytes and key, with why and where from in the headers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnirouter_shared.topics import Topic

if TYPE_CHECKING:
    from omnirouter_shared.kafka.consumer import Consumed

MAX_REASON = 1000


def dead_letter_record(
    consumed: Consumed, reason: str, group: str
) -> tuple[Topic, bytes | None, bytes | None, list[tuple[str, bytes]]]:
    headers = [
        ("dlq.reason", reason[:MAX_REASON].encode()),
        ("dlq.source.topic", consumed.topic.encode()),
        ("dlq.source.partition", str(consumed.partition).encode()),
        ("dlq.source.offset", str(consumed.offset).encode()),
        ("dlq.group", group.encode()),
        *((k, v) for k, v in consumed.headers if not k.startswith("dlq.")),
    ]
    return (Topic.DEAD_LETTER, consumed.key, consumed.value, headers)
