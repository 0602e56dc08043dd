"""One loopback aiohttp server that impersonates every vendor's send API.

It checks each request the way the vendor would (auth scheme and credentials, path, content type,
required fields) and answers 401/400 like the vendor when something is wrong; it records every request,
and can be told to fail (429 with Retry-After, 500, 400) or to stall a number of times."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from omnirouter_gateway.app import COMPONENTS
from omnirouter_shared.contracts.common import Address, AddressKind, Channel, Vendor
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.contracts.replies import ReplyPurpose, ReplyRequested
from omnirouter_shared.devstack.ports import free_port
from omnirouter_shared.topics import Topic
from tests.gateway.harness import Gateway, running_gateway

TWILIO_SID = "ACtest0000000000000000000000000001"
TWILIO_TOKEN = "twilio-token-secret"
META_TOKEN = "meta-access-token-secret"
META_PHONE_NUMBER_ID = "106540352242922"
SENDGRID_KEY = "SG.sendgrid-key-secret"
MAILGUN_KEY = "mailgun-key-secret"
MAILGUN_DOMAIN = "mg.example.com"
VONAGE_KEY = "vonagekey"
VONAGE_SECRET = "vonage-secret"
TELEGRAM_TOKEN = "123456:telegram-token-secret"
SMS_FROM = "+18005550199"
EMAIL_FROM = "support@example.com"


@dataclass
class Recorded:
    vendor: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]] = field(default_factory=dict)
    json: Any = None
    #: False while the fake is stalling and the client went away before the answer.
    completed: bool = False


@dataclass
class _Plan:
    status: int
    times: int
    retry_after: str | None = None
    body: Any = None
    delay_s: float = 0.0


class FakeVendors:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Recorded] = []
        #: Requests refused for a bad credential, path or body: a correct sender makes none.
        self.refused: list[tuple[str, str]] = []
        self._plans: dict[str, list[_Plan]] = defaultdict(list)
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None

    # -- control ---------------------------------------------------------------------------------------
    def fail(
        self, vendor: str, status: int, times: int = 1, *, retry_after: str | None = None, body: Any = None
    ) -> None:
        self._plans[vendor].append(_Plan(status, times, retry_after, body))

    def stall(self, vendor: str, seconds: float, times: int = 1) -> None:
        """Hold the answer (a slow vendor); a client that gives up leaves the request not completed."""
        self._plans[vendor].append(_Plan(0, times, delay_s=seconds))

    def sent(self, vendor: str) -> list[Recorded]:
        """Requests the vendor accepted (answered 2xx)."""
        return [r for r in self.requests if r.vendor == vendor and r.completed]

    def env(self) -> dict[str, str]:
        """Gateway settings pointing every sender here, with the credentials checked."""
        return {
            "TWILIO_API_URL": self.url,
            "TWILIO_ACCOUNT_SID": TWILIO_SID,
            "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "TWILIO_FROM_NUMBER": SMS_FROM,
            "TWILIO_WHATSAPP_FROM": SMS_FROM,
            "META_GRAPH_URL": f"{self.url}/v21.0",
            "META_ACCESS_TOKEN": META_TOKEN,
            "META_PHONE_NUMBER_ID": META_PHONE_NUMBER_ID,
            "SENDGRID_API_URL": self.url,
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "MAILGUN_API_URL": self.url,
            "MAILGUN_API_KEY": MAILGUN_KEY,
            "MAILGUN_DOMAIN": MAILGUN_DOMAIN,
            "VONAGE_API_URL": self.url,
            "VONAGE_API_KEY": VONAGE_KEY,
            "VONAGE_API_SECRET": VONAGE_SECRET,
            "VONAGE_FROM": SMS_FROM,
            "TELEGRAM_API_URL": self.url,
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "EMAIL_FROM": EMAIL_FROM,
        }

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._guard("twilio", self._twilio))
        app.router.add_post("/v21.0/me/messages", self._guard("meta", self._meta_send_api))
        app.router.add_post("/v21.0/{number_id}/messages", self._guard("meta", self._whatsapp))
        app.router.add_post("/v3/mail/send", self._guard("sendgrid", self._sendgrid))
        app.router.add_post("/v3/{domain}/messages", self._guard("mailgun", self._mailgun))
        app.router.add_post("/v1/messages", self._guard("vonage", self._vonage))
        app.router.add_post("/bot{token}/sendMessage", self._guard("telegram", self._telegram))
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- plumbing --------------------------------------------------------------------------------------
    def _guard(
        self, vendor: str, check: Callable[[web.Request, Recorded], Awaitable[web.Response]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            rec = Recorded(vendor, request.path, dict(request.headers))
            self.requests.append(rec)
            plans = self._plans[vendor]
            if plans:
                plan = plans[0]
                plan.times -= 1
                if plan.times <= 0:
                    plans.pop(0)
                if plan.delay_s:
                    await asyncio.sleep(plan.delay_s)
                else:
                    headers = {"Retry-After": plan.retry_after} if plan.retry_after else {}
                    rec.completed = True
                    return web.json_response(
                        plan.body or {"error": f"injected {plan.status}"}, status=plan.status, headers=headers
                    )
            try:
                response = await check(request, rec)
            except _Refused as exc:
                self.refused.append((vendor, exc.reason))
                rec.completed = True
                return web.json_response({"error": exc.reason}, status=exc.status)
            rec.completed = True
            return response

        return handler

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):06d}{uuid.uuid4().hex[:8]}"

    # -- vendors ---------------------------------------------------------------------------------------
    async def _twilio(self, request: web.Request, rec: Recorded) -> web.Response:
        _basic(request, TWILIO_SID, TWILIO_TOKEN)
        _expect(request.match_info["sid"] == TWILIO_SID, 404, "account sid in the path is not the caller's")
        _content_type(request, "application/x-www-form-urlencoded")
        rec.form = await _form(request)
        to, sender = _one(rec.form, "To"), _one(rec.form, "From")
        _expect(
            bool(rec.form.get("Body") or rec.form.get("MediaUrl")), 400, "21602: Body or MediaUrl required"
        )
        _expect(to.startswith("whatsapp:") == sender.startswith("whatsapp:"), 400, "63007: channel mismatch")
        _expect(to.removeprefix("whatsapp:").startswith("+"), 400, "21211: invalid To number")
        return web.json_response({"sid": self._id("SM"), "status": "queued", "to": to}, status=201)

    async def _whatsapp(self, request: web.Request, rec: Recorded) -> web.Response:
        _bearer(request, META_TOKEN)
        _expect(request.match_info["number_id"] == META_PHONE_NUMBER_ID, 400, "unknown phone number id")
        _content_type(request, "application/json")
        rec.json = body = await request.json()
        _expect(body.get("messaging_product") == "whatsapp", 400, "messaging_product must be whatsapp")
        _expect(str(body.get("to", "")).isdigit(), 400, "to must be a WhatsApp id")
        _expect(body.get("type") == "text" and bool(body.get("text", {}).get("body")), 400, "text.body")
        wamid = "wamid." + self._id("")
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"wa_id": body["to"]}],
                "messages": [{"id": wamid}],
            }
        )

    async def _meta_send_api(self, request: web.Request, rec: Recorded) -> web.Response:
        _bearer(request, META_TOKEN)
        _content_type(request, "application/json")
        rec.json = body = await request.json()
        _expect(bool(body.get("recipient", {}).get("id")), 400, "recipient.id required")
        _expect(body.get("messaging_type") == "RESPONSE", 400, "messaging_type")
        _expect(bool(body.get("message", {}).get("text")), 400, "message.text required")
        return web.json_response({"recipient_id": body["recipient"]["id"], "message_id": self._id("m_")})

    async def _sendgrid(self, request: web.Request, rec: Recorded) -> web.Response:
        _bearer(request, SENDGRID_KEY)
        _content_type(request, "application/json")
        rec.json = body = await request.json()
        pers = body.get("personalizations") or [{}]
        _expect(bool(pers[0].get("to") and pers[0]["to"][0].get("email")), 400, "personalizations.to")
        _expect(bool(body.get("from", {}).get("email")), 400, "from.email required")
        _expect(bool(body.get("subject")), 400, "subject required")
        content = body.get("content") or [{}]
        _expect(bool(content[0].get("type") and content[0].get("value")), 400, "content required")
        return web.Response(status=202, headers={"X-Message-Id": self._id("sg")})

    async def _mailgun(self, request: web.Request, rec: Recorded) -> web.Response:
        _basic(request, "api", MAILGUN_KEY)
        _expect(request.match_info["domain"] == MAILGUN_DOMAIN, 404, "Domain not found")
        _expect(
            request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"), 400, "form"
        )
        rec.form = await _form(request)
        for name in ("from", "to", "subject"):
            _one(rec.form, name)
        _expect(
            bool(rec.form.get("text") or rec.form.get("html")), 400, "Need at least one of 'text' or 'html'"
        )
        return web.json_response(
            {"id": f"<{self._id('mg')}@{MAILGUN_DOMAIN}>", "message": "Queued. Thank you."}
        )

    async def _vonage(self, request: web.Request, rec: Recorded) -> web.Response:
        _basic(request, VONAGE_KEY, VONAGE_SECRET)
        _content_type(request, "application/json")
        rec.json = body = await request.json()
        for name in ("channel", "message_type", "to", "from"):
            _expect(bool(body.get(name)), 422, f"{name} is required")
        _expect(body["message_type"] != "text" or bool(body.get("text")), 422, "text is required")
        _expect(str(body["to"]).isdigit(), 422, "to must be E.164 without +")
        return web.json_response({"message_uuid": str(uuid.uuid4())}, status=202)

    async def _telegram(self, request: web.Request, rec: Recorded) -> web.Response:
        if request.match_info["token"] != TELEGRAM_TOKEN:
            raise _Refused(401, "Unauthorized")
        _content_type(request, "application/json")
        rec.json = body = await request.json()
        _expect("chat_id" in body and bool(body.get("text")), 400, "Bad Request: message text is empty")
        return web.json_response(
            {"ok": True, "result": {"message_id": next(self._ids), "chat": {"id": body["chat_id"]}}}
        )


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _expect(ok: bool, status: int, reason: str) -> None:
    if not ok:
        raise _Refused(status, reason)


def _basic(request: web.Request, user: str, password: str) -> None:
    auth = request.headers.get("Authorization", "")
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    _expect(auth == expected, 401, "authentication failed (basic)")


def _bearer(request: web.Request, token: str) -> None:
    _expect(request.headers.get("Authorization") == f"Bearer {token}", 401, "authentication failed (bearer)")


def _content_type(request: web.Request, expected: str) -> None:
    _expect(request.content_type == expected, 415, f"content type must be {expected}")


async def _form(request: web.Request) -> dict[str, list[str]]:
    data = await request.post()
    out: dict[str, list[str]] = defaultdict(list)
    for k, v in data.items():
        out[k].append(str(v))
    return dict(out)


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name) or []
    _expect(len(values) == 1 and bool(values[0]), 400, f"{name} is required")
    return values[0]


# -- helpers for the tests that use the fakes ------------------------------------------------------
FAST = {
    "GATEWAY_DELIVERY_BACKOFF_S": "0.05",
    "GATEWAY_DELIVERY_BACKOFF_MAX_S": "0.2",
    "GATEWAY_DELIVERY_ATTEMPTS": "3",
    "GATEWAY_DELIVERY_POLL_S": "0.1",
    "GATEWAY_DELIVERY_TIMEOUT_S": "2",
    # Tansu holds a new group's first join for the session timeout: keep start-up quick.
    "KAFKA_SESSION_TIMEOUT_MS": "2000",
    "KAFKA_HEARTBEAT_INTERVAL_MS": "400",
}


@contextlib.asynccontextmanager
async def outbound_gateway(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, fake: FakeVendors, **env: str
) -> AsyncIterator[Gateway]:
    async with running_gateway(
        kafka_bootstrap, database_url, topic_prefix, **{**fake.env(), **FAST, **env}
    ) as gw:
        yield gw


ADDRESSES: dict[Channel, Address] = {
    Channel.SMS: Address(kind=AddressKind.PHONE, value="+14155550100"),
    Channel.WHATSAPP: Address(kind=AddressKind.WHATSAPP, value="14155550100"),
    Channel.MESSENGER: Address(kind=AddressKind.MESSENGER, value="6254432198765", namespace="104882"),
    Channel.INSTAGRAM: Address(kind=AddressKind.INSTAGRAM, value="17841400000", namespace="9921"),
    Channel.EMAIL: Address(kind=AddressKind.EMAIL, value="ana@example.org", display_name="Ana"),
    Channel.TELEGRAM: Address(kind=AddressKind.TELEGRAM, value="987654321", namespace="omnibot"),
    Channel.WEBCHAT: Address(kind=AddressKind.WEBCHAT, value="visitor-1"),
    Channel.VOICE: Address(kind=AddressKind.PHONE, value="+14155550100"),
}


def reply(
    channel: Channel,
    text: str = "Your order ships today.",
    *,
    customer_id: str | None = None,
    vendor: Vendor | None = None,
    purpose: ReplyPurpose = ReplyPurpose.SERVICE,
    to: Address | None = None,
    **extra: Any,
) -> ReplyRequested:
    return ReplyRequested(
        reply_id=f"r-{uuid.uuid4().hex}",
        customer_id=customer_id or f"c-{uuid.uuid4().hex[:10]}",
        author="agent:alice",
        channel=channel,
        to=to or ADDRESSES[channel],
        text=text,
        vendor=vendor,
        purpose=purpose,
        **extra,
    )


async def publish(gw: Gateway, *replies: ReplyRequested) -> None:
    producer = gw.app[COMPONENTS].producer
    for r in replies:
        await producer.publish(
            Topic.REPLIES_OUTBOUND, r.customer_id, new_envelope(r, producer="agent-presence")
        )


async def eventually(check: Callable[[], bool], timeout_s: float = 15.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def statuses(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """reply id -> the status payload (asserting no reply has two)."""
    out: dict[str, dict[str, Any]] = {}
    for env in events:
        assert env["type"] == "reply.delivery_status", env
        payload = env["payload"]
        assert payload["reply_id"] not in out, f"two statuses for {payload['reply_id']}: {events}"
        out[payload["reply_id"]] = payload
    return out
