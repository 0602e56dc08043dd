"""Settings from environment variables, validated once at start-up with errors that name the variable.

Each service subclasses :class:`ServiceSettings`; a field's variable is its name in upper case unless it
declares ``Field(json_schema_extra={"env": "NAME"})``. Settings are built from an injected mapping (never
``os.environ`` deep in the code), so tests construct them directly.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from typing import Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omnirouter_shared.topics import Topic


class SettingsError(ValueError):
    """Raised with one line per missing or invalid variable."""


def _env_name(name: str, extra: Any) -> str:
    if isinstance(extra, dict) and isinstance(extra.get("env"), str):
        return str(extra["env"])
    return name.upper()


class ServiceSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    service_name: str = Field(default="omnirouter", json_schema_extra={"env": "OMNI_SERVICE_NAME"})
    instance_id: str = Field(
        default_factory=lambda: f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}",
        json_schema_extra={"env": "OMNI_INSTANCE_ID"},
    )
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092", min_length=1)
    #: Prefixes every topic name: several suites (or test runs) can share one cluster.
    topic_prefix: str = Field(default="", json_schema_extra={"env": "OMNI_TOPIC_PREFIX"})
    database_url: str = Field(default="postgresql://postgres@127.0.0.1:5432/omnirouter", min_length=1)
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8080, ge=1, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_format: str = Field(default="json", pattern=r"^(json|text)$")
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1000)
    kafka_heartbeat_interval_ms: int = Field(default=1_000, ge=100)
    #: How long a joining member waits for others; a few seconds in dev/test (Tansu waits it out fully).
    kafka_rebalance_timeout_ms: int = Field(default=3_000, ge=500)
    kafka_request_timeout_ms: int = Field(default=5_000, ge=500)
    kafka_fetch_max_wait_ms: int = Field(default=5, ge=0)
    db_pool_min: int = Field(default=1, ge=0)
    db_pool_max: int = Field(default=10, ge=1)
    #: Kubernetes grace period minus preStop: in-flight work must finish within this.
    shutdown_timeout_s: float = Field(default=15.0, gt=0)

    def topic(self, topic: Topic | str) -> str:
        return f"{self.topic_prefix}{topic}"

    @classmethod
    def env_names(cls) -> dict[str, str]:
        return {name: _env_name(name, f.json_schema_extra) for name, f in cls.model_fields.items()}

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        return load_settings(cls, environ, **overrides)


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], environ: Mapping[str, str], **overrides: Any) -> S:
    names = cls.env_names()
    data: dict[str, Any] = {}
    for field, var in names.items():
        if var in environ and environ[var] != "":
            data[field] = environ[var]
    # HTTP_PORT is generic; a service-specific alias wins if both are set.
    data.update(overrides)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = names.get(field, field.upper())
            problem = "is required but not set" if err["type"] == "missing" else f"is invalid: {err['msg']}"
            lines.append(f"  {var} {problem}")
        raise SettingsError(f"invalid configuration for {cls.__name__}:\n" + "\n".join(lines)) from None
