"""The bench's webhooks are checked with the vendors' own packages, as the gateway will check them."""

from urllib.parse import parse_qsl

import orjson
from pywa.utils import webhook_updates_validator
from telegram import Update
from twilio.request_validator import RequestValidator

from bench.schedule import Arrival, Customer, Kind, build_schedule
from bench.webhooks import Signing, build_request

SIGNING = Signing(
    public_url="http://127.0.0.1:8080",
    twilio_auth_token="tw-token",
    meta_app_secret="meta-secret",
    telegram_secret_token="tg-secret",
)
CUSTOMER = Customer(7, "+14155550007", 700_000_007, Kind.TWILIO_SMS)


def _arrival(kind: Kind, vendor_id: str) -> Arrival:
    return Arrival(3, 0.0, kind, 7, vendor_id, "bkrunx3", "Hello [bkrunx3]")


def test_twilio_messages_and_calls_carry_a_valid_signature_over_the_public_url() -> None:
    validator = RequestValidator("tw-token")
    for kind, vid in (
        (Kind.TWILIO_SMS, "SM" + "a" * 32),
        (Kind.TWILIO_WHATSAPP, "SM" + "b" * 32),
        (Kind.TWILIO_VOICE, "CA" + "c" * 32),
    ):
        req = build_request(_arrival(kind, vid), CUSTOMER, SIGNING)
        params = dict(parse_qsl(req.body.decode()))
        assert validator.validate(SIGNING.public_url + req.path, params, req.headers["X-Twilio-Signature"])
        assert not RequestValidator("other").validate(
            SIGNING.public_url + req.path, params, req.headers["X-Twilio-Signature"]
        )
    sms = dict(parse_qsl(build_request(_arrival(Kind.TWILIO_SMS, "SM1"), CUSTOMER, SIGNING).body.decode()))
    assert (sms["From"], sms["To"], sms["Body"], sms["MessageSid"]) == (
        "+14155550007",
        "+18005550199",
        "Hello [bkrunx3]",
        "SM1",
    )
    wa = dict(
        parse_qsl(build_request(_arrival(Kind.TWILIO_WHATSAPP, "SM2"), CUSTOMER, SIGNING).body.decode())
    )
    assert wa["From"] == "whatsapp:+14155550007"
    call = build_request(_arrival(Kind.TWILIO_VOICE, "CA1"), CUSTOMER, SIGNING)
    assert call.path == "/webhooks/twilio/voice"
    assert dict(parse_qsl(call.body.decode()))["CallStatus"] == "ringing"


def test_meta_whatsapp_is_signed_over_the_raw_body() -> None:
    req = build_request(_arrival(Kind.META_WHATSAPP, "wamid.X1"), CUSTOMER, SIGNING)
    assert req.path == "/webhooks/meta"
    assert webhook_updates_validator("meta-secret", req.body, req.headers["X-Hub-Signature-256"])
    assert not webhook_updates_validator("wrong", req.body, req.headers["X-Hub-Signature-256"])
    message = orjson.loads(req.body)["entry"][0]["changes"][0]["value"]["messages"][0]
    assert message == {
        "from": "14155550007",
        "id": "wamid.X1",
        "timestamp": str(SIGNING.epoch),
        "type": "text",
        "text": {"body": "Hello [bkrunx3]"},
    }


def test_telegram_is_a_valid_update_with_the_secret_token() -> None:
    req = build_request(_arrival(Kind.TELEGRAM, "900000042"), CUSTOMER, SIGNING)
    assert req.path == "/webhooks/telegram"
    assert req.headers["X-Telegram-Bot-Api-Secret-Token"] == "tg-secret"
    update = Update.de_json(orjson.loads(req.body), None)
    assert update is not None and update.message is not None
    assert update.update_id == 900000042
    assert update.message.text == "Hello [bkrunx3]"
    assert update.message.from_user is not None and update.message.from_user.id == 700_000_007


def test_a_redelivery_is_byte_identical_to_the_original() -> None:
    plan, customers = build_schedule(rate=200, duration_s=5, run_id="r")
    redelivered = [a for a in plan if a.redelivery]
    assert redelivered
    for again in redelivered:
        first = next(a for a in plan if a.vendor_message_id == again.vendor_message_id and not a.redelivery)
        assert build_request(first, customers[first.customer], SIGNING) == build_request(
            again, customers[again.customer], SIGNING
        )


def test_signing_from_the_dev_environment() -> None:
    s = Signing.from_env(
        {
            "OMNI_PUBLIC_URL": "http://gw:8080/",
            "TWILIO_AUTH_TOKEN": "t",
            "META_APP_SECRET": "m",
            "TELEGRAM_SECRET_TOKEN": "g",
            "IDENTITY_BUSINESS_ADDRESSES": "support@example.com, +18005550123",
        },
        epoch=1,
    )
    assert (s.public_url, s.business_phone, s.epoch) == ("http://gw:8080", "+18005550123", 1)
