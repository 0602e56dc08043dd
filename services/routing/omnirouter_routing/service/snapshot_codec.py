"""The record a partition's state is saved as on omni.routing.snapshots (pure encode/decode).

Key: the inbox partition number. Headers carry the partition and the inbox offset the state covers, so a
restore picks the newest record of each partition without decompressing the others. Value: a magic
prefix and zlib-compressed JSON holding each routing domain's engine snapshot (the core's own versioned
format) and the partition clock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

MAGIC = b"ORS1"
FORMAT_VERSION = 1
HEADER_PARTITION = "inbox-partition"
HEADER_OFFSET = "inbox-offset"


class SnapshotFormatError(ValueError):
    """The record is not a partition snapshot this version can read."""


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    partition: int
    #: Every inbox event with a lower offset is folded into this state (and its decisions published).
    offset: int
    last_tick: datetime | None
    now: datetime | None
    #: routing domain -> the engine's snapshot bytes.
    domains: dict[str, bytes]
    config_digest: str
    taken_at: datetime
    instance: str


def _ts(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def encode(snap: PartitionSnapshot) -> tuple[bytes, list[tuple[str, bytes]]]:
    doc = {
        "format": FORMAT_VERSION,
        "partition": snap.partition,
        "offset": snap.offset,
        "last_tick": _ts(snap.last_tick),
        "now": _ts(snap.now),
        "config_digest": snap.config_digest,
        "taken_at": _ts(snap.taken_at),
        "instance": snap.instance,
        # Engine snapshots are UTF-8 JSON already: kept as strings, compressed with the rest.
        "domains": {d: data.decode() for d, data in sorted(snap.domains.items())},
    }
    value = MAGIC + zlib.compress(orjson.dumps(doc), 1)
    headers = [(HEADER_PARTITION, str(snap.partition).encode()), (HEADER_OFFSET, str(snap.offset).encode())]
    return value, headers


def header_position(headers: tuple[tuple[str, bytes], ...] | list[tuple[str, bytes]]) -> tuple[int, int]:
    """(inbox partition, covered offset) from a record's headers."""
    found = dict(headers)
    try:
        return int(found[HEADER_PARTITION]), int(found[HEADER_OFFSET])
    except (KeyError, ValueError) as exc:
        raise SnapshotFormatError(f"snapshot record without valid position headers: {exc}") from None


def decode(value: bytes | None) -> PartitionSnapshot:
    if not value or not value.startswith(MAGIC):
        raise SnapshotFormatError("not a routing partition snapshot (bad magic)")
    try:
        doc = orjson.loads(zlib.decompress(value[len(MAGIC) :]))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise SnapshotFormatError(f"corrupt snapshot: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        raise SnapshotFormatError(
            f"unsupported snapshot format {doc.get('format') if isinstance(doc, dict) else None!r}"
        )
    try:
        return PartitionSnapshot(
            partition=int(doc["partition"]),
            offset=int(doc["offset"]),
            last_tick=_dt(doc.get("last_tick")),
            now=_dt(doc.get("now")),
            domains={str(d): str(s).encode() for d, s in doc["domains"].items()},
            config_digest=str(doc.get("config_digest", "")),
            taken_at=_dt(doc.get("taken_at")) or datetime.fromtimestamp(0),
            instance=str(doc.get("instance", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SnapshotFormatError(f"incomplete snapshot: {exc}") from None
