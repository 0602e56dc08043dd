"""The roster's input models and the agent-token scheme.

Tokens are 32 random bytes (URL-safe base64); only their SHA-256 is stored. A token is compared in
constant time against the hash stored for the agent named in the URL, so a token never identifies an
agent by itself and a leaked hash cannot be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from omnirouter_shared.contracts.agents import AgentKind, AgentUpserted
from omnirouter_shared.contracts.common import Channel

AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")

Skill = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Team = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentFields(_Input):
    """Fields an admin may set when creating or updating an agent or a bot."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: AgentKind | None = None
    skills: dict[Skill, Annotated[int, Field(ge=1, le=10)]] | None = None
    capacity: dict[Channel, Annotated[int, Field(ge=0, le=100)]] | None = None
    teams: tuple[Team, ...] | None = None
    routing_domain: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$"
    )
    enabled: bool | None = None
    #: The desktop tool's backend, for tools that cannot hold a WebSocket (Standard Webhooks).
    webhook_url: str | None = Field(default=None, max_length=2000)

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and value != "" and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value


class AgentCreate(AgentFields):
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=200)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not AGENT_ID.match(value):
            raise ValueError("letters, digits and _ . @ - only, starting with a letter or digit")
        return value


class AgentRecord(BaseModel):
    """An agent as the roster holds it (never with its token)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: AgentKind
    skills: dict[str, int]
    capacity: dict[str, int]
    teams: tuple[str, ...]
    routing_domain: str
    enabled: bool
    webhook_url: str | None

    def apply(self, update: AgentFields) -> AgentRecord:
        """The record with the fields the update sets; ``webhook_url: ""`` removes the webhook."""
        merged: dict[str, object] = {}
        for key in update.model_fields_set:
            value = getattr(update, key)
            if key == "webhook_url":
                merged[key] = value or None
            elif key == "capacity" and value is not None:
                merged[key] = {str(channel): n for channel, n in value.items()}
            elif value is not None:
                merged[key] = value
        return self.model_validate({**self.model_dump(), **merged})

    def upserted(self) -> AgentUpserted:
        return AgentUpserted(
            agent_id=self.id,
            name=self.name,
            kind=self.kind,
            skills=self.skills,
            capacity={Channel(c): n for c, n in self.capacity.items()},
            teams=self.teams,
            enabled=self.enabled,
        )


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def token_matches(token: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_token(token), stored_hash)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
