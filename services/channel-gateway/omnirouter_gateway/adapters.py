"""Which adapter answers which public webhook URL (what a platform team configures at each vendor)."""

from __future__ import annotations

from pydantic import SecretStr

from omnirouter_gateway.inbound.base import WebhookAdapter
from omnirouter_gateway.inbound.mailgun import MailgunRoute
from omnirouter_gateway.inbound.meta import Meta
from omnirouter_gateway.inbound.sendgrid import SendGridInboundParse
from omnirouter_gateway.inbound.telegram import Telegram
from omnirouter_gateway.inbound.twilio import TwilioMessaging, TwilioVoice, TwilioVoiceStatus
from omnirouter_gateway.inbound.vonage import Vonage
from omnirouter_gateway.inbound.webchat import WebchatWebhook
from omnirouter_gateway.settings import GatewaySettings


def secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def build_adapters(settings: GatewaySettings) -> dict[str, WebhookAdapter]:
    """``POST`` path -> adapter."""
    twilio_token = secret(settings.twilio_auth_token)
    limit = settings.max_body_bytes
    adapters: dict[str, WebhookAdapter] = {
        "/webhooks/twilio/messaging": TwilioMessaging(twilio_token, settings.twilio_account_sid, limit),
        "/webhooks/twilio/voice": TwilioVoice(
            twilio_token,
            settings.twilio_account_sid,
            limit,
            settings.twilio_voice_queue,
            settings.twilio_voice_greeting,
        ),
        "/webhooks/twilio/voice/status": TwilioVoiceStatus(twilio_token, settings.twilio_account_sid, limit),
        "/webhooks/meta": Meta(secret(settings.meta_app_secret), limit),
        "/webhooks/telegram": Telegram(
            secret(settings.telegram_secret_token), secret(settings.telegram_bot_token), limit
        ),
        "/webhooks/vonage": Vonage(
            secret(settings.vonage_signature_secret), settings.signature_tolerance_s, limit
        ),
        "/webhooks/sendgrid": SendGridInboundParse(
            secret(settings.sendgrid_webhook_public_key),
            secret(settings.sendgrid_basic_auth),
            settings.max_email_body_bytes,
            settings.signature_tolerance_s,
        ),
        "/webhooks/mailgun": MailgunRoute(
            secret(settings.mailgun_signing_key),
            settings.max_email_body_bytes,
            settings.signature_tolerance_s,
        ),
        "/webhooks/webchat": WebchatWebhook(
            secret(settings.webchat_webhook_secret), limit, settings.signature_tolerance_s
        ),
    }
    return adapters
