"""agent-presence settings, read once from the environment (see ServiceSettings for the common ones)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from omnirouter_shared.settings import ServiceSettings


class PresenceSettings(ServiceSettings):
    service_name: str = Field(default="agent-presence", json_schema_extra={"env": "OMNI_SERVICE_NAME"})
    http_port: int = Field(default=8081, ge=1, le=65535)
    admin_token: SecretStr = Field(json_schema_extra={"env": "OMNI_ADMIN_TOKEN"})
    #: System-to-system tokens; the first one is what presence presents to identity-resolution.
    api_tokens: tuple[SecretStr, ...] = Field(default=(), json_schema_extra={"env": "OMNI_API_TOKENS"})
    identity_url: str | None = Field(default=None, json_schema_extra={"env": "IDENTITY_URL"})
    routing_url: str | None = Field(default=None, json_schema_extra={"env": "ROUTING_URL"})
    #: A desktop whose connection is gone for this long is set offline (and routing re-queues its offers).
    heartbeat_grace_s: float = Field(
        default=30.0, gt=0, json_schema_extra={"env": "PRESENCE_HEARTBEAT_GRACE_S"}
    )
    #: Reason codes accepted with status "away" (comma-separated).
    away_reasons: tuple[str, ...] = Field(
        default=("break", "lunch", "meeting", "training", "personal", "technical", "missed_offers"),
        json_schema_extra={"env": "PRESENCE_AWAY_REASONS"},
    )
    #: Off for replicas that only serve desktops (the decision consumer then runs elsewhere).
    consume_decisions: bool = Field(default=True, json_schema_extra={"env": "PRESENCE_CONSUME_DECISIONS"})
    #: Groups of a decisions batch (no shared agent or task) applied side by side, each a short
    #: transaction: hides the database round trips of one group behind the others'.
    #: Keep it below DB_POOL_MAX: the agents' actions and pushes need connections too.
    decisions_parallel: int = Field(
        default=6, ge=1, le=64, json_schema_extra={"env": "PRESENCE_DECISIONS_PARALLEL"}
    )
    #: Global webhook for every agent without its own (Standard Webhooks; secret "whsec_<base64>").
    webhook_url: str | None = Field(default=None, json_schema_extra={"env": "PRESENCE_WEBHOOK_URL"})
    webhook_secret: SecretStr | None = Field(
        default=None, json_schema_extra={"env": "PRESENCE_WEBHOOK_SECRET"}
    )
    webhook_timeout_s: float = Field(
        default=5.0, gt=0, json_schema_extra={"env": "PRESENCE_WEBHOOK_TIMEOUT_S"}
    )
    webhook_backoff_base_s: float = Field(
        default=2.0, gt=0, json_schema_extra={"env": "PRESENCE_WEBHOOK_BACKOFF_BASE_S"}
    )
    webhook_backoff_max_s: float = Field(
        default=600.0, gt=0, json_schema_extra={"env": "PRESENCE_WEBHOOK_BACKOFF_MAX_S"}
    )
    webhook_max_attempts: int = Field(
        default=15, ge=1, json_schema_extra={"env": "PRESENCE_WEBHOOK_MAX_ATTEMPTS"}
    )
    #: How long the per-agent feed (the frames pushed to desktops) is kept for resuming and audit.
    feed_retention_s: float = Field(
        default=86_400.0, gt=0, json_schema_extra={"env": "PRESENCE_FEED_RETENTION_S"}
    )
    #: Per-source request rate (token bucket, per client address; 0 = off) and burst. Health, readiness
    #: and metrics are exempt. Desktops behind one NAT share a source: raise it for large sites.
    rate_limit_per_s: float = Field(
        default=50.0, ge=0, json_schema_extra={"env": "PRESENCE_RATE_LIMIT_PER_S"}
    )
    rate_limit_burst: float = Field(
        default=200.0, ge=1, json_schema_extra={"env": "PRESENCE_RATE_LIMIT_BURST"}
    )
    #: CIDRs of the ingress/proxies whose X-Forwarded-For names the client (anyone else's is ignored).
    trusted_proxies: str = Field(default="", json_schema_extra={"env": "PRESENCE_TRUSTED_PROXIES"})
    #: Largest request body accepted (413 above it).
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, json_schema_extra={"env": "PRESENCE_MAX_BODY_BYTES"}
    )

    @field_validator("api_tokens", "away_reasons", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("identity_url", "routing_url", "webhook_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("whsec_"):
            raise ValueError('must be a Standard Webhooks secret "whsec_<base64>"')
        return value

    @property
    def heartbeat_interval_s(self) -> float:
        """How often desktops should send a heartbeat, and the WebSocket ping interval."""
        return max(0.5, self.heartbeat_grace_s / 3)
