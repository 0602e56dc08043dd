"""Versioned event contracts shared by every service.

Every message on every topic is an :class:`~omnirouter_shared.contracts.envelope.Envelope` (JSON) whose
``payload`` is one of the payload models registered in :mod:`omnirouter_shared.contracts.registry`.
"""

from omnirouter_shared.contracts.envelope import Envelope, decode_envelope, encode_envelope, new_envelope
from omnirouter_shared.contracts.registry import EVENT_TYPES, UnknownEventType, parse_payload

__all__ = [
    "EVENT_TYPES",
    "Envelope",
    "UnknownEventType",
    "decode_envelope",
    "encode_envelope",
    "new_envelope",
    "parse_payload",
]
