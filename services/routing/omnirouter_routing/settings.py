"""routing settings, read once from the environment (the common ones live in ServiceSettings)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from omnirouter_shared.settings import ServiceSettings


class RoutingSettings(ServiceSettings):
    service_name: str = Field(default="routing", json_schema_extra={"env": "OMNI_SERVICE_NAME"})
    http_port: int = Field(default=8083, ge=1, le=65535)
    admin_token: SecretStr = Field(json_schema_extra={"env": "OMNI_ADMIN_TOKEN"})
    #: System-to-system tokens: read the statistics (a wallboard, a WFM tool).
    api_tokens: tuple[SecretStr, ...] = Field(default=(), json_schema_extra={"env": "OMNI_API_TOKENS"})
    #: The YAML configuration (queues, skills, intents); unset = built-in defaults (one queue).
    routing_config: Path | None = Field(default=None, json_schema_extra={"env": "ROUTING_CONFIG"})
    #: How often the configuration file's modification time is checked for a hot reload.
    config_poll_interval_s: float = Field(
        default=2.0, gt=0, json_schema_extra={"env": "ROUTING_CONFIG_POLL_INTERVAL_S"}
    )
    #: Period of the RoutingTick events written into each owned inbox partition (drives time-outs).
    tick_interval_s: float = Field(default=1.0, gt=0, json_schema_extra={"env": "ROUTING_TICK_INTERVAL_S"})
    #: How far ahead of the last tick an event's own timestamp may move the clock (producer skew guard).
    max_clock_lead_s: float = Field(default=5.0, ge=0, json_schema_extra={"env": "ROUTING_MAX_CLOCK_LEAD_S"})
    #: A partition's state is snapshotted this long after a change, or after ``snapshot_every_events``.
    snapshot_interval_s: float = Field(
        default=2.0, gt=0, json_schema_extra={"env": "ROUTING_SNAPSHOT_INTERVAL_S"}
    )
    snapshot_every_events: int = Field(
        default=5000, ge=1, json_schema_extra={"env": "ROUTING_SNAPSHOT_EVERY_EVENTS"}
    )
    #: With only ticks since the last snapshot, snapshot this rarely (keeps the replay after a restart short).
    snapshot_idle_interval_s: float = Field(
        default=60.0, gt=0, json_schema_extra={"env": "ROUTING_SNAPSHOT_IDLE_INTERVAL_S"}
    )
    max_batch: int = Field(default=500, ge=1, le=5000, json_schema_extra={"env": "ROUTING_MAX_BATCH"})
    #: Per-source request rate (token bucket, per client address; 0 = off) and burst. Health, readiness
    #: and metrics are exempt. Callers are wallboards and tools.
    rate_limit_per_s: float = Field(default=50.0, ge=0, json_schema_extra={"env": "ROUTING_RATE_LIMIT_PER_S"})
    rate_limit_burst: float = Field(
        default=200.0, ge=1, json_schema_extra={"env": "ROUTING_RATE_LIMIT_BURST"}
    )
    #: CIDRs of the ingress/proxies whose X-Forwarded-For names the client (anyone else's is ignored).
    trusted_proxies: str = Field(default="", json_schema_extra={"env": "ROUTING_TRUSTED_PROXIES"})
    #: Largest request body accepted (413 above it).
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, json_schema_extra={"env": "ROUTING_MAX_BODY_BYTES"}
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value
