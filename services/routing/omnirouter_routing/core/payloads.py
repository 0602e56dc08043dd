"""Building decision payloads on the hot path without re-validating what the core already checked.

``Model(**fields)`` validates every field (~10 µs per model) and even ``model_construct`` costs several
microseconds; the core emits several models per event and must sustain 50,000 events/s. The values
come from validated inputs and the core's own typed state, so the instance is assembled directly. Every
field must be given (defaults are not applied); tests round-trip each emitted payload through
validation to prove the result equals a validated model.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


_FIELD_COUNTS: dict[type[BaseModel], int] = {}


def assemble(cls: type[M], **fields: Any) -> M:
    count = _FIELD_COUNTS.get(cls)
    if count is None:
        count = _FIELD_COUNTS[cls] = len(cls.model_fields)
    assert len(fields) == count, f"{cls.__name__}: every field must be given"
    model = cls.__new__(cls)
    # Frozen models refuse normal attribute assignment; these are the attributes pydantic itself sets.
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model
