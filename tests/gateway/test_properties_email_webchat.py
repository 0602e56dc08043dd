"""Whatever arrives, the email and web chat adapters either parse it or refuse it with a 4xx
WebhookError: never another exception (a 500), never a 5xx for content."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from omnirouter_gateway.inbound.base import RawRequest, WebhookAdapter, WebhookError
from omnirouter_gateway.inbound.mailgun import MailgunRoute
from omnirouter_gateway.inbound.sendgrid import SendGridInboundParse
from omnirouter_gateway.inbound.webchat import WebchatWebhook, sign

BASIC = "user:pw"
MAILGUN_KEY = "mg-key"
WHSEC = "whsec_" + base64.b64encode(b"webchat-secret").decode()
BOUNDARY = "xYzZY"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sendgrid = SendGridInboundParse(None, BASIC, 10**7, 300)
mailgun = MailgunRoute(MAILGUN_KEY, 10**7, 300)
webchat = WebchatWebhook(WHSEC, 10**6, 300)


def request(body: bytes, content_type: str, headers: dict[str, str]) -> RawRequest:
    return RawRequest(
        method="POST",
        url="https://gw.example.com/webhooks/x",
        path="/webhooks/x",
        query={},
        headers=CIMultiDictProxy(CIMultiDict({"Content-Type": content_type, **headers})),
        body=body,
        content_type=content_type.split(";")[0].strip().lower(),
    )


def run(adapter: WebhookAdapter, raw: RawRequest) -> None:
    try:
        adapter.verify(raw, time.time())
        adapter.parse(raw, datetime.now(UTC))
    except WebhookError as exc:
        assert exc.status < 500, exc


def multipart(fields: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, value in fields:
        out += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    return out + f"--{BOUNDARY}--\r\n".encode()


SENDGRID_AUTH = {"Authorization": "Basic " + base64.b64encode(BASIC.encode()).decode()}
names = st.sampled_from(
    ["headers", "from", "to", "subject", "text", "html", "envelope", "charsets", "email", "attachments", "x"]
)


@FAST
@given(st.binary(max_size=2000))
def test_sendgrid_arbitrary_bytes(body: bytes) -> None:
    run(sendgrid, request(body, f"multipart/form-data; boundary={BOUNDARY}", SENDGRID_AUTH))


@FAST
@given(st.lists(st.tuples(names, st.binary(max_size=400)), max_size=8))
def test_sendgrid_arbitrary_fields(fields: list[tuple[str, bytes]]) -> None:
    run(sendgrid, request(multipart(fields), f"multipart/form-data; boundary={BOUNDARY}", SENDGRID_AUTH))


header_values = st.text(max_size=120)


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            ["From", "To", "Subject", "Message-ID", "In-Reply-To", "References", "Date", "Content-Type"]
        ),
        header_values,
        max_size=8,
    ),
    st.binary(max_size=500),
)
def test_sendgrid_raw_mime_from_arbitrary_headers(headers: dict[str, str], payload: bytes) -> None:
    lines = "".join(f"{k}: {v.replace(chr(10), ' ').replace(chr(13), ' ')}\n" for k, v in headers.items())
    mime = lines.encode("utf-8", "surrogateescape") + b"\n" + payload
    body = multipart([("email", mime), ("to", b"support@example.com")])
    run(sendgrid, request(body, f"multipart/form-data; boundary={BOUNDARY}", SENDGRID_AUTH))


@FAST
@given(
    st.text(max_size=300),
    st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=80),
    st.binary(max_size=300),
)
def test_sendgrid_well_formed_mime(text: str, subject: str, attachment: bytes) -> None:
    msg = EmailMessage()
    msg["From"] = "Ann <ann@example.com>"
    msg["To"] = "support@example.com"
    msg["Subject"] = subject
    msg.set_content(text)
    msg.add_attachment(attachment, maintype="application", subtype="octet-stream", filename="f.bin")
    body = multipart([("email", msg.as_bytes())])
    raw = request(body, f"multipart/form-data; boundary={BOUNDARY}", SENDGRID_AUTH)
    sendgrid.verify(raw, time.time())
    [event] = sendgrid.parse(raw, datetime.now(UTC)).events
    assert event.payload.sender.value == "ann@example.com"
    assert len(event.payload.attachments) == 1


def mailgun_signed(fields: dict[str, str]) -> dict[str, str]:
    ts, token = str(int(time.time())), "t" * 50
    sig = hmac.new(MAILGUN_KEY.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return {**fields, "timestamp": ts, "token": token, "signature": sig}


@FAST
@given(
    st.binary(max_size=2000),
    st.sampled_from(["application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]),
)
def test_mailgun_arbitrary_bytes(body: bytes, content_type: str) -> None:
    run(mailgun, request(body, content_type, {}))


@FAST
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "sender",
                "from",
                "recipient",
                "subject",
                "body-plain",
                "body-html",
                "message-headers",
                "Message-Id",
                "body-mime",
            ]
        ),
        st.one_of(
            st.text(max_size=200),
            st.builds(
                lambda v: orjson.dumps(v).decode(),
                st.lists(st.lists(st.text(max_size=20), max_size=3), max_size=4),
            ),
        ),
        max_size=9,
    )
)
def test_mailgun_signed_arbitrary_fields(fields: dict[str, str]) -> None:
    from urllib.parse import urlencode

    body = urlencode(mailgun_signed(fields)).encode()
    run(mailgun, request(body, "application/x-www-form-urlencoded", {}))


#: What JSON (and orjson) can hold: 64-bit integers, strings without lone surrogates.
json_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | json_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_text, children, max_size=4),
    max_leaves=20,
)


@FAST
@given(
    st.one_of(
        st.binary(max_size=500),
        st.builds(orjson.dumps, json_values),
        st.builds(
            orjson.dumps,
            st.fixed_dictionaries(
                {},
                optional={
                    "message_id": json_values,
                    "sender": st.one_of(
                        json_values,
                        st.fixed_dictionaries(
                            {"visitor_id": json_values}, optional={"email": json_values, "name": json_values}
                        ),
                    ),
                    "text": json_values,
                    "attachments": json_values,
                    "sent_at": json_values,
                    "conversation_id": json_values,
                },
            ),
        ),
    )
)
def test_webchat_signed_arbitrary_json(body: bytes) -> None:
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    ts = str(int(time.time()))
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": ts,
        "webhook-signature": sign(key, "msg_1", ts, body),
    }
    run(webchat, request(body, "application/json", headers))


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]), st.text(max_size=60)
    )
)
def test_webchat_arbitrary_headers(headers: dict[str, str]) -> None:
    safe = {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()}
    run(webchat, request(b"{}", "application/json", safe))
