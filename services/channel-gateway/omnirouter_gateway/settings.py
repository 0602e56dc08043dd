"""channel-gateway settings: the public URL vendors call, one secret per vendor, delivery tuning.

A vendor whose secret is not set is refused with a clear error (503 ``vendor_not_configured``): the
gateway never accepts an unsigned webhook because a secret is missing.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from omnirouter_shared.settings import ServiceSettings


def _secret(env: str) -> SecretStr | None:
    return Field(default=None, json_schema_extra={"env": env})


class GatewaySettings(ServiceSettings):
    service_name: str = Field(default="channel-gateway", json_schema_extra={"env": "OMNI_SERVICE_NAME"})
    http_port: int = Field(default=8080, ge=1, le=65535)
    #: The broker must acknowledge well inside the vendors' answer budgets (Meta 5 s, Twilio 15 s), so
    #: a stalled broker turns into a 503 the vendor retries, not a vendor-side time-out.
    kafka_request_timeout_ms: int = Field(default=3_000, ge=500)
    #: The gateway's external base URL (what vendors call): signatures are checked over it, never over
    #: the Host header a proxy or an attacker sent.
    public_url: str = Field(
        default="http://127.0.0.1:8080",
        pattern=r"^https?://[^/\s]+(/[^\s]*)?$",
        json_schema_extra={"env": "OMNI_PUBLIC_URL"},
    )
    admin_token: SecretStr | None = Field(default=None, json_schema_extra={"env": "OMNI_ADMIN_TOKEN"})

    twilio_auth_token: SecretStr | None = _secret("TWILIO_AUTH_TOKEN")
    twilio_account_sid: str | None = Field(default=None, json_schema_extra={"env": "TWILIO_ACCOUNT_SID"})
    meta_app_secret: SecretStr | None = _secret("META_APP_SECRET")
    meta_verify_token: SecretStr | None = _secret("META_VERIFY_TOKEN")
    meta_access_token: SecretStr | None = _secret("META_ACCESS_TOKEN")
    sendgrid_webhook_public_key: SecretStr | None = _secret("SENDGRID_WEBHOOK_PUBLIC_KEY")
    #: ``user:password`` expected as basic auth on the Inbound Parse URL (SendGrid's other option).
    sendgrid_basic_auth: SecretStr | None = _secret("SENDGRID_BASIC_AUTH")
    sendgrid_api_key: SecretStr | None = _secret("SENDGRID_API_KEY")
    mailgun_signing_key: SecretStr | None = _secret("MAILGUN_SIGNING_KEY")
    mailgun_api_key: SecretStr | None = _secret("MAILGUN_API_KEY")
    mailgun_domain: str | None = Field(default=None, json_schema_extra={"env": "MAILGUN_DOMAIN"})
    vonage_signature_secret: SecretStr | None = _secret("VONAGE_SIGNATURE_SECRET")
    vonage_api_key: SecretStr | None = _secret("VONAGE_API_KEY")
    vonage_api_secret: SecretStr | None = _secret("VONAGE_API_SECRET")
    telegram_secret_token: SecretStr | None = _secret("TELEGRAM_SECRET_TOKEN")
    telegram_bot_token: SecretStr | None = _secret("TELEGRAM_BOT_TOKEN")
    webchat_webhook_secret: SecretStr | None = _secret("WEBCHAT_WEBHOOK_SECRET")
    webchat_token_secret: SecretStr | None = _secret("WEBCHAT_TOKEN_SECRET")

    #: Vendor API base URLs: tests and sandboxes point them at fake vendor servers.
    twilio_api_url: str = Field(default="https://api.twilio.com", json_schema_extra={"env": "TWILIO_API_URL"})
    meta_graph_url: str = Field(
        default="https://graph.facebook.com/v21.0", json_schema_extra={"env": "META_GRAPH_URL"}
    )
    sendgrid_api_url: str = Field(
        default="https://api.sendgrid.com", json_schema_extra={"env": "SENDGRID_API_URL"}
    )
    mailgun_api_url: str = Field(
        default="https://api.mailgun.net", json_schema_extra={"env": "MAILGUN_API_URL"}
    )
    vonage_api_url: str = Field(default="https://api.nexmo.com", json_schema_extra={"env": "VONAGE_API_URL"})
    telegram_api_url: str = Field(
        default="https://api.telegram.org", json_schema_extra={"env": "TELEGRAM_API_URL"}
    )

    #: Twilio Voice: the TwiML queue callers wait in until an agent takes the call.
    twilio_voice_queue: str = Field(default="omnirouter", json_schema_extra={"env": "TWILIO_VOICE_QUEUE"})
    twilio_voice_greeting: str = Field(
        default="Thank you for calling. Please hold, an agent will be with you shortly.",
        json_schema_extra={"env": "TWILIO_VOICE_GREETING"},
    )

    #: Refuse timestamps further than this from now (Mailgun, Vonage, Standard Webhooks, SendGrid).
    signature_tolerance_s: int = Field(
        default=300, ge=10, le=86_400, json_schema_extra={"env": "GATEWAY_SIGNATURE_TOLERANCE_S"}
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, json_schema_extra={"env": "GATEWAY_MAX_BODY_BYTES"}
    )
    #: Email bodies carry attachments inline: a larger limit for SendGrid and Mailgun (SendGrid: 30 MB).
    max_email_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, json_schema_extra={"env": "GATEWAY_MAX_EMAIL_BODY_BYTES"}
    )
    #: A claim on a vendor message older than this, never marked published, may be taken over (the
    #: replica that held it died between claim and publish).
    claim_lease_s: float = Field(default=30.0, gt=0, json_schema_extra={"env": "GATEWAY_CLAIM_LEASE_S"})
    #: How long a redelivery waits for another replica's in-flight publish of the same message.
    inflight_wait_s: float = Field(default=3.0, ge=0, json_schema_extra={"env": "GATEWAY_INFLIGHT_WAIT_S"})
    #: Per-source (client address behind GATEWAY_TRUSTED_PROXIES) webhook rate; 0 = off. Generous: a
    #: vendor posts from a pool of addresses and one of them rarely carries more than tens per second,
    #: while a 429 costs a vendor retry (or, for a vendor that does not retry, a message); it stops one
    #: source flooding the intake and the database, not a vendor's peak.
    rate_limit_per_s: float = Field(
        default=200.0, ge=0, json_schema_extra={"env": "GATEWAY_RATE_LIMIT_PER_S"}
    )
    rate_limit_burst: float = Field(
        default=1000.0, ge=1, json_schema_extra={"env": "GATEWAY_RATE_LIMIT_BURST"}
    )
    trusted_proxies: str = Field(default="", json_schema_extra={"env": "GATEWAY_TRUSTED_PROXIES"})

    #: Outbound delivery.
    deliver: bool = Field(default=True, json_schema_extra={"env": "GATEWAY_DELIVER"})
    delivery_attempts: int = Field(
        default=5, ge=1, le=20, json_schema_extra={"env": "GATEWAY_DELIVERY_ATTEMPTS"}
    )
    delivery_backoff_s: float = Field(
        default=0.5, gt=0, json_schema_extra={"env": "GATEWAY_DELIVERY_BACKOFF_S"}
    )
    delivery_backoff_max_s: float = Field(
        default=30.0, gt=0, json_schema_extra={"env": "GATEWAY_DELIVERY_BACKOFF_MAX_S"}
    )
    delivery_timeout_s: float = Field(
        default=10.0, gt=0, json_schema_extra={"env": "GATEWAY_DELIVERY_TIMEOUT_S"}
    )

    # -- Outbound delivery: workers, vendor per channel, senders' "from" identities -----------------
    #: Vendor calls in flight at once per replica (each holds no database connection while it waits).
    delivery_concurrency: int = Field(
        default=4, ge=1, le=64, json_schema_extra={"env": "GATEWAY_DELIVERY_CONCURRENCY"}
    )
    #: How often idle workers look for due deliveries that another replica took in, or whose backoff ended.
    delivery_poll_s: float = Field(default=1.0, gt=0, json_schema_extra={"env": "GATEWAY_DELIVERY_POLL_S"})
    #: The vendor used for a channel when a reply names none, as ``channel=vendor`` pairs. A vendor
    #: without credentials is skipped for another configured one that serves the channel.
    channel_vendors: str = Field(
        default=(
            "sms=twilio,mms=twilio,whatsapp=meta,email=sendgrid,messenger=meta,instagram=meta,"
            "telegram=telegram,webchat=webchat"
        ),
        pattern=r"^\s*([a-z]+\s*=\s*[a-z]+)?(\s*,\s*[a-z]+\s*=\s*[a-z]+)*\s*$",
        json_schema_extra={"env": "GATEWAY_CHANNEL_VENDORS"},
    )
    twilio_from_number: str | None = Field(default=None, json_schema_extra={"env": "TWILIO_FROM_NUMBER"})
    #: The WhatsApp sender on Twilio, E.164 (sent as ``whatsapp:+...``).
    twilio_whatsapp_from: str | None = Field(default=None, json_schema_extra={"env": "TWILIO_WHATSAPP_FROM"})
    meta_phone_number_id: str | None = Field(default=None, json_schema_extra={"env": "META_PHONE_NUMBER_ID"})
    email_from: str | None = Field(default=None, json_schema_extra={"env": "EMAIL_FROM"})
    email_from_name: str | None = Field(default=None, json_schema_extra={"env": "EMAIL_FROM_NAME"})
    vonage_from: str | None = Field(default=None, json_schema_extra={"env": "VONAGE_FROM"})

    # -- Web chat: the widget's browser endpoints and chat backends ---------------------------------
    #: Sites allowed to embed the widget and call /webchat/v1 from the browser (comma list of origins,
    #: e.g. ``https://www.example.com``); the gateway's own public URL is always allowed.
    webchat_allowed_origins: str = Field(default="", json_schema_extra={"env": "WEBCHAT_ALLOWED_ORIGINS"})
    #: A chat backend that wants agents' replies: POSTed there, signed with WEBCHAT_WEBHOOK_SECRET.
    webchat_callback_url: str | None = Field(default=None, json_schema_extra={"env": "WEBCHAT_CALLBACK_URL"})
    webchat_token_ttl_s: int = Field(
        default=3600, ge=60, le=86_400, json_schema_extra={"env": "WEBCHAT_TOKEN_TTL_S"}
    )
    #: How long after its expiry a visitor token may still be traded for a new one with the same id.
    webchat_renew_window_s: int = Field(
        default=30 * 86_400, ge=0, json_schema_extra={"env": "WEBCHAT_RENEW_WINDOW_S"}
    )

    @field_validator("public_url", mode="after")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator(
        "twilio_api_url",
        "meta_graph_url",
        "sendgrid_api_url",
        "mailgun_api_url",
        "vonage_api_url",
        "telegram_api_url",
        mode="after",
    )
    @classmethod
    def _strip_api_slash(cls, value: str) -> str:
        return value.rstrip("/")
