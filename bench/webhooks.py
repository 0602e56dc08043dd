"""Vendor webhooks exactly as each vendor signs them (pure: an Arrival in, the bytes to POST out).

Twilio: X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + sorted params)), computed by the same
function ``omni-dev webhook`` uses. Meta: X-Hub-Signature-256 = "sha256=" + hex HMAC-SHA256(app secret,
raw body). Telegram: the bot's secret token echoed in X-Telegram-Bot-Api-Secret-Token. A redelivery
builds byte-identical requests, as vendors' retries are.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson

from bench.schedule import Arrival, Customer, Kind
from omnirouter_shared.devstack.twilio_sign import twilio_signature

TWILIO_ACCOUNT_SID = "ACdev00000000000000000000000000000"
PATHS: dict[Kind, str] = {
    Kind.TWILIO_SMS: "/webhooks/twilio/messaging",
    Kind.TWILIO_WHATSAPP: "/webhooks/twilio/messaging",
    Kind.META_WHATSAPP: "/webhooks/meta",
    Kind.TELEGRAM: "/webhooks/telegram",
    Kind.TWILIO_VOICE: "/webhooks/twilio/voice",
}


@dataclass(frozen=True)
class Signing:
    """Where the vendor believes it is posting (the signed URL) and the secrets it shares with us."""

    public_url: str
    twilio_auth_token: str
    meta_app_secret: str
    telegram_secret_token: str
    business_phone: str = "+18005550199"
    #: Unix time written into bodies that carry one (the same for a message and its redeliveries).
    epoch: int = 1_764_000_000

    @classmethod
    def from_env(cls, env: Mapping[str, str], epoch: int) -> Signing:
        business = next(
            (
                a.strip()
                for a in env.get("IDENTITY_BUSINESS_ADDRESSES", "").split(",")
                if a.strip().startswith("+")
            ),
            "+18005550199",
        )
        return cls(
            public_url=env["OMNI_PUBLIC_URL"].rstrip("/"),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            meta_app_secret=env.get("META_APP_SECRET", ""),
            telegram_secret_token=env.get("TELEGRAM_SECRET_TOKEN", ""),
            business_phone=business,
            epoch=epoch,
        )


@dataclass(frozen=True)
class SignedRequest:
    path: str
    body: bytes
    headers: dict[str, str]


def build_request(arrival: Arrival, customer: Customer, signing: Signing) -> SignedRequest:
    if arrival.kind in (Kind.TWILIO_SMS, Kind.TWILIO_WHATSAPP, Kind.TWILIO_VOICE):
        return _twilio(arrival, customer, signing)
    if arrival.kind is Kind.META_WHATSAPP:
        return _meta(arrival, customer, signing)
    return _telegram(arrival, customer, signing)


def _twilio(arrival: Arrival, customer: Customer, signing: Signing) -> SignedRequest:
    path = PATHS[arrival.kind]
    if arrival.kind is Kind.TWILIO_VOICE:
        params = {
            "CallSid": arrival.vendor_message_id,
            "AccountSid": TWILIO_ACCOUNT_SID,
            "From": customer.phone,
            "Caller": customer.phone,
            "To": signing.business_phone,
            "Called": signing.business_phone,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
    else:
        whatsapp = arrival.kind is Kind.TWILIO_WHATSAPP
        prefix = "whatsapp:" if whatsapp else ""
        params = {
            "MessageSid": arrival.vendor_message_id,
            "SmsSid": arrival.vendor_message_id,
            "SmsMessageSid": arrival.vendor_message_id,
            "AccountSid": TWILIO_ACCOUNT_SID,
            "From": prefix + customer.phone,
            "To": prefix + signing.business_phone,
            "Body": arrival.text,
            "NumMedia": "0",
            "NumSegments": "1",
            "ApiVersion": "2010-04-01",
        }
        if whatsapp:
            params["WaId"] = customer.phone.lstrip("+")
            params["ProfileName"] = f"Customer {customer.index}"
    signature = twilio_signature(signing.twilio_auth_token, signing.public_url + path, params)
    return SignedRequest(
        path,
        urlencode(params).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature},
    )


def meta_signature(app_secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def _meta(arrival: Arrival, customer: Customer, signing: Signing) -> SignedRequest:
    wa_id = customer.phone.lstrip("+")
    business = signing.business_phone.lstrip("+")
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": business,
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": f"Customer {customer.index}"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": arrival.vendor_message_id,
                                    "timestamp": str(signing.epoch),
                                    "type": "text",
                                    "text": {"body": arrival.text},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }
    body = orjson.dumps(payload)
    return SignedRequest(
        PATHS[Kind.META_WHATSAPP],
        body,
        {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": meta_signature(signing.meta_app_secret, body),
        },
    )


def _telegram(arrival: Arrival, customer: Customer, signing: Signing) -> SignedRequest:
    update_id = int(arrival.vendor_message_id)
    person = {"id": customer.telegram_id, "first_name": "Customer", "last_name": str(customer.index)}
    payload = {
        "update_id": update_id,
        "message": {
            "message_id": update_id - 900_000_000 + 1,
            "from": {**person, "is_bot": False, "language_code": "en"},
            "chat": {**person, "type": "private"},
            "date": signing.epoch,
            "text": arrival.text,
        },
    }
    return SignedRequest(
        PATHS[Kind.TELEGRAM],
        orjson.dumps(payload),
        {
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": signing.telegram_secret_token,
        },
    )
