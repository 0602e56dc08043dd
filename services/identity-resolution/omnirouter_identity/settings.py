"""identity-resolution settings, read once from the environment (common ones in ServiceSettings)."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from omnirouter_shared.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: str = Field(default="identity-resolution", json_schema_extra={"env": "OMNI_SERVICE_NAME"})
    http_port: int = Field(default=8082, ge=1, le=65535)
    admin_token: SecretStr = Field(json_schema_extra={"env": "OMNI_ADMIN_TOKEN"})
    #: System-to-system tokens (a CRM, a till, a marketing tool, agent-presence).
    api_tokens: tuple[SecretStr, ...] = Field(default=(), json_schema_extra={"env": "OMNI_API_TOKENS"})
    #: Region for national-format phone numbers ("(650) 253-2222" with US).
    default_region: str = Field(
        default="US", pattern=r"^[A-Z]{2}$", json_schema_extra={"env": "IDENTITY_DEFAULT_REGION"}
    )
    #: The business's own numbers and addresses: never a customer's identifier.
    business_addresses: tuple[str, ...] = Field(
        default=(), json_schema_extra={"env": "IDENTITY_BUSINESS_ADDRESSES"}
    )
    #: After an erasure, a *new* contact from an erased address gets an ephemeral profile instead of a
    #: fresh one (replays from before the erasure are always suppressed).
    suppress_after_erasure: bool = Field(
        default=False, json_schema_extra={"env": "IDENTITY_SUPPRESS_AFTER_ERASURE"}
    )
    cache_size: int = Field(default=100_000, ge=0, json_schema_extra={"env": "IDENTITY_CACHE_SIZE"})
    max_batch: int = Field(default=200, ge=1, le=5000, json_schema_extra={"env": "IDENTITY_MAX_BATCH"})
    #: Off for replicas that only serve the HTTP API.
    consume: bool = Field(default=True, json_schema_extra={"env": "IDENTITY_CONSUME"})
    #: Per-source request rate (token bucket, per client address; 0 = off) and burst. Health, readiness
    #: and metrics are exempt. Callers are systems (CRM, presence): a few per source.
    rate_limit_per_s: float = Field(
        default=50.0, ge=0, json_schema_extra={"env": "IDENTITY_RATE_LIMIT_PER_S"}
    )
    rate_limit_burst: float = Field(
        default=200.0, ge=1, json_schema_extra={"env": "IDENTITY_RATE_LIMIT_BURST"}
    )
    #: CIDRs of the ingress/proxies whose X-Forwarded-For names the client (anyone else's is ignored).
    trusted_proxies: str = Field(default="", json_schema_extra={"env": "IDENTITY_TRUSTED_PROXIES"})
    #: Largest request body accepted (413 above it).
    max_body_bytes: int = Field(
        default=256 * 1024, ge=1024, json_schema_extra={"env": "IDENTITY_MAX_BODY_BYTES"}
    )

    @field_validator("api_tokens", "business_addresses", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("default_region", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value
