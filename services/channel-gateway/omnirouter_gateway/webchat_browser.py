"""The web chat widget's browser endpoints: visitor sessions, messages in, replies out over a
WebSocket, and the widget page itself.

- ``POST /webchat/v1/sessions`` (no auth): a visitor id and a short-lived token bound to it (HMAC with
  WEBCHAT_TOKEN_SECRET). A returning visitor presents its old token (even expired, within the renewal
  window) and keeps its visitor id, so its history and customer profile follow it.
- ``POST /webchat/v1/messages`` (``Authorization: Bearer <token>``): published like any inbound message.
- ``GET /webchat/v1/stream?cursor=N`` (WebSocket; the token as ``?token=`` or as a
  ``bearer.<token>`` subprotocol, since browsers cannot set headers on sockets): every reply after cursor
  N, then each new one as it is stored, whichever replica stored it (LISTEN/NOTIFY, plus a periodic
  sweep so a lost notification only delays a reply).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from aiohttp import WSMsgType, web

from omnirouter_gateway import metrics
from omnirouter_gateway.inbound.base import InboundEvent, Malformed, WebhookError
from omnirouter_gateway.inbound.webchat import WIDGET, attachments_of, webchat_event
from omnirouter_gateway.intake import Intake, StillInFlight
from omnirouter_gateway.outbound.webchat import NOTIFY_CHANNEL
from omnirouter_gateway.settings import GatewaySettings
from omnirouter_gateway.webhooks import read_body
from omnirouter_shared.db.listen import PgListener
from omnirouter_shared.http.errors import json_error
from omnirouter_shared.kafka.producer import BrokerUnavailable
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

ENDPOINT = "webchat_widget"
SUBPROTOCOL = "webchat.v1"
MAX_MESSAGE_BODY = 64 * 1024
SWEEP_INTERVAL_S = 5.0
_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# -- visitor tokens -----------------------------------------------------------------------------------
class TokenRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class VisitorToken:
    visitor_id: str
    expires_at: int


class VisitorTokens:
    """``v1.<visitor id>.<expiry>.<base64url HMAC-SHA256>``: stateless, so any replica checks it."""

    def __init__(self, secret: str, ttl_s: int, renew_window_s: int) -> None:
        self._key = secret.encode()
        self._ttl_s = ttl_s
        self._renew_window_s = renew_window_s

    def _mac(self, visitor_id: str, expires_at: int) -> str:
        digest = hmac.new(self._key, f"v1.{visitor_id}.{expires_at}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, visitor_id: str, now: float) -> tuple[str, int]:
        expires_at = int(now) + self._ttl_s
        return f"v1.{visitor_id}.{expires_at}.{self._mac(visitor_id, expires_at)}", expires_at

    def check(self, token: str, now: float, *, renewing: bool = False) -> VisitorToken:
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1" or not parts[2].isdigit() or len(token) > 300:
            raise TokenRefused("the visitor token is malformed")
        visitor_id, expires_at = parts[1], int(parts[2])
        if not hmac.compare_digest(self._mac(visitor_id, expires_at).encode(), parts[3].encode()):
            raise TokenRefused("the visitor token is not valid")
        grace = self._renew_window_s if renewing else 0
        if now > expires_at + grace:
            raise TokenRefused("the visitor token has expired; open a new session")
        return VisitorToken(visitor_id, expires_at)


def new_visitor_id() -> str:
    return "v_" + uuid.uuid4().hex


# -- sockets and cross-replica push ------------------------------------------------------------------
@dataclass(eq=False)
class VisitorSocket:
    visitor_id: str
    ws: web.WebSocketResponse
    cursor: int
    expires_at: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class WebchatHub:
    def __init__(self, pool: asyncpg.Pool, dsn: str, sweep_interval_s: float = SWEEP_INTERVAL_S) -> None:
        self._pool = pool
        self._interval = sweep_interval_s
        self._sockets: dict[str, set[VisitorSocket]] = {}
        self._listener = PgListener(dsn, NOTIFY_CHANNEL, self._on_notify)
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._listener.open()
        self._task = asyncio.create_task(self._sweep_loop(), name="webchat-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sockets in list(self._sockets.values()):
            for s in list(sockets):
                # 1012: the widget reconnects (to another replica) and resumes from its cursor at once.
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await s.ws.close(code=1012, message=b"server restarting")
        for task in list(self._pending):
            task.cancel()
        await self._listener.close()

    def register(self, sock: VisitorSocket) -> None:
        self._sockets.setdefault(sock.visitor_id, set()).add(sock)

    def unregister(self, sock: VisitorSocket) -> None:
        sockets = self._sockets.get(sock.visitor_id)
        if sockets is not None:
            sockets.discard(sock)
            if not sockets:
                del self._sockets[sock.visitor_id]

    async def pump(self, sock: VisitorSocket) -> None:
        """Send the visitor's replies after the socket's cursor, in order (one sender at a time)."""
        async with sock.lock:
            while not sock.ws.closed:
                rows = await self._pool.fetch(
                    """
                    SELECT cursor, frame::text AS frame FROM webchat_messages
                    WHERE visitor_id = $1 AND cursor > $2 ORDER BY cursor LIMIT 200
                    """,
                    sock.visitor_id,
                    sock.cursor,
                )
                for row in rows:
                    frame = orjson.loads(row["frame"])
                    await sock.ws.send_str(orjson.dumps({**frame, "cursor": row["cursor"]}).decode())
                    sock.cursor = row["cursor"]
                if len(rows) < 200:
                    return

    async def deliver(self, visitor_id: str) -> None:
        for sock in list(self._sockets.get(visitor_id, ())):
            try:
                await self.pump(sock)
            except (*_DB_ERRORS, ConnectionError, RuntimeError) as exc:
                log.warning("web chat push failed; the sweep retries", extra={"error": type(exc).__name__})

    def _on_notify(self, payload: str) -> None:
        try:
            visitor_id = str(orjson.loads(payload)["visitor_id"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if visitor_id not in self._sockets:
            return
        task = asyncio.get_running_loop().create_task(self.deliver(visitor_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if not self._listener.listening:
                    log.warning("web chat LISTEN connection lost; reconnecting")
                    await self._listener.ensure()
                now = time.time()
                for visitor_id, sockets in list(self._sockets.items()):
                    for sock in list(sockets):
                        if now > sock.expires_at:
                            # The widget renews its session and reconnects with the new token.
                            await sock.ws.close(code=4001, message=b"token expired")
                    await self.deliver(visitor_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("web chat sweep failed; retrying next interval")


# -- HTTP ---------------------------------------------------------------------------------------------
def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class WebchatBrowser:
    def __init__(self, settings: GatewaySettings, pool: asyncpg.Pool, intake: Intake) -> None:
        secret = settings.webchat_token_secret
        self._tokens = (
            VisitorTokens(
                secret.get_secret_value(), settings.webchat_token_ttl_s, settings.webchat_renew_window_s
            )
            if secret is not None and secret.get_secret_value()
            else None
        )
        self._intake = intake
        self.hub = WebchatHub(pool, settings.database_url)
        allowed = [o.strip() for o in settings.webchat_allowed_origins.split(",") if o.strip()]
        self._origins = {_origin(o) for o in allowed} | {_origin(settings.public_url)}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("POST", "/webchat/v1/sessions", self._cors(self.sessions))
        app.router.add_route("OPTIONS", "/webchat/v1/sessions", self._cors(self.preflight))
        app.router.add_route("POST", "/webchat/v1/messages", self._cors(self.messages))
        app.router.add_route("OPTIONS", "/webchat/v1/messages", self._cors(self.preflight))
        app.router.add_get("/webchat/v1/stream", self.stream)
        app.router.add_get("/webchat/widget", self.widget)

    async def run(self, app: web.Application) -> AsyncIterator[None]:
        """cleanup_ctx entry: after the pool and producer are up, before they go down."""
        await self.hub.start()
        try:
            yield
        finally:
            await self.hub.stop()

    # -- CORS ----------------------------------------------------------------------------------------
    def _cors(self, handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            origin = request.headers.get("Origin")
            if origin is not None and origin.lower() not in self._origins:
                return json_error(403, "origin_not_allowed", "this site may not use the chat widget")
            response = await handler(request)
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Vary"] = "Origin"
            return response

        return wrapped

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )

    def _visitor(self, token: str | None, *, renewing: bool = False) -> VisitorToken:
        if self._tokens is None:
            raise TokenRefused("web chat is not configured")
        if not token:
            raise TokenRefused("a visitor token is required")
        return self._tokens.check(token, time.time(), renewing=renewing)

    def _not_configured(self) -> web.Response | None:
        if self._tokens is None:
            return json_error(
                503, "vendor_not_configured", "web chat is not configured: WEBCHAT_TOKEN_SECRET is not set"
            )
        return None

    # -- handlers ------------------------------------------------------------------------------------
    async def sessions(self, request: web.Request) -> web.StreamResponse:
        if (refusal := self._not_configured()) is not None:
            return refusal
        assert self._tokens is not None
        body = await _json_body(request, required=False)
        if isinstance(body, web.Response):
            return body
        old = body.get("token") if isinstance(body, dict) else None
        visitor_id = None
        if isinstance(old, str) and old:
            try:
                visitor_id = self._visitor(old, renewing=True).visitor_id
            except TokenRefused:
                visitor_id = None  # a stale or foreign token: a fresh visitor, not an error
        visitor_id = visitor_id or new_visitor_id()
        token, expires_at = self._tokens.issue(visitor_id, time.time())
        return web.json_response(
            {
                "visitor_id": visitor_id,
                "token": token,
                "expires_at": datetime.fromtimestamp(expires_at, UTC).isoformat(),
            },
            status=201,
        )

    async def messages(self, request: web.Request) -> web.StreamResponse:
        if (refusal := self._not_configured()) is not None:
            return refusal
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        try:
            visitor = self._visitor(token.strip() if scheme.lower() == "bearer" else None)
        except TokenRefused as exc:
            return json_error(401, "unauthorized", exc.reason, headers={"WWW-Authenticate": "Bearer"})
        body = await _json_body(request, required=True)
        if isinstance(body, web.Response):
            return body
        try:
            event = _message_event(visitor.visitor_id, body)
        except WebhookError as exc:
            metrics.WEBHOOKS.labels(ENDPOINT, "refused", exc.error).inc()
            return json_error(exc.status, exc.error, exc.reason)
        try:
            result = await self._intake.accept(ENDPOINT, [event])
        except (BrokerUnavailable, StillInFlight):
            metrics.WEBHOOKS.labels(ENDPOINT, "unavailable", "broker").inc()
            return json_error(
                503, "unavailable", "message not stored, retry later", headers={"Retry-After": "2"}
            )
        outcome = "accepted" if result.published else "duplicate"
        metrics.WEBHOOKS.labels(ENDPOINT, outcome, "").inc()
        payload = event.payload
        return web.json_response(
            {
                "status": outcome,
                "message_id": payload.vendor_message_id.split(":", 1)[1],
                "interaction_id": payload.interaction_id,
            },
            status=202,
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.lower() not in self._origins:
            return json_error(403, "origin_not_allowed", "this site may not use the chat widget")
        if (refusal := self._not_configured()) is not None:
            return refusal
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        from_protocol = next((p.removeprefix("bearer.") for p in offered if p.startswith("bearer.")), None)
        try:
            visitor = self._visitor(request.query.get("token") or from_protocol)
        except TokenRefused as exc:
            return json_error(401, "unauthorized", exc.reason)
        raw_cursor = request.query.get("cursor", "0")
        if not raw_cursor.isdigit() or len(raw_cursor) > 18:
            return json_error(400, "malformed", "cursor must be a non-negative integer")
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=30.0, max_msg_size=4096)
        await ws.prepare(request)
        sock = VisitorSocket(visitor.visitor_id, ws, int(raw_cursor), visitor.expires_at)
        self.hub.register(sock)
        try:
            await ws.send_str(
                orjson.dumps(
                    {"type": "ready", "visitor_id": visitor.visitor_id, "cursor": sock.cursor}
                ).decode()
            )
            await self.hub.pump(sock)
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and msg.data.strip() == '{"type":"ping"}':
                    await ws.send_str('{"type":"pong"}')
        except (*_DB_ERRORS, ConnectionError) as exc:
            log.warning("web chat stream ended", extra={"error": type(exc).__name__})
            await ws.close(code=1011, message=b"try again")
        finally:
            self.hub.unregister(sock)
        return ws

    async def widget(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=WIDGET_HTML,
            content_type="text/html",
            headers={
                "Cache-Control": "public, max-age=300",
                "Content-Security-Policy": (
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                    "connect-src 'self' ws: wss:; frame-ancestors *"
                ),
            },
        )


async def _json_body(request: web.Request, *, required: bool) -> Any:
    if not request.body_exists:
        return {} if not required else json_error(400, "malformed", "a JSON body is required")
    if request.content_type.lower() != "application/json":
        return json_error(415, "unsupported_media_type", "expects application/json")
    try:
        raw = await read_body(request, MAX_MESSAGE_BODY)
    except WebhookError as exc:
        return json_error(exc.status, exc.error, exc.reason)
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        return json_error(400, "malformed", "body is not JSON")
    if not isinstance(body, dict):
        return json_error(400, "malformed", "body is not a JSON object")
    return body


def _message_event(visitor_id: str, body: dict[str, Any]) -> InboundEvent:
    message_id = body.get("message_id") or uuid.uuid4().hex
    if not isinstance(message_id, str) or len(message_id) > 100 or ":" in message_id:
        raise Malformed("message_id must be a string of at most 100 characters without ':'")
    text = body.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > 10_000):
        raise Malformed("text must be a string of at most 10000 characters")
    name, email = body.get("name"), body.get("email")
    return webchat_event(
        # Scoped by visitor: one visitor's ids can never collide with (or suppress) another's.
        vendor_message_id=f"{visitor_id}:{message_id}",
        visitor_id=visitor_id,
        name=name[:200] if isinstance(name, str) and name.strip() else None,
        email=email.strip()[:320] if isinstance(email, str) and "@" in email else None,
        text=text.strip() if isinstance(text, str) and text.strip() else None,
        attachments=attachments_of(body.get("attachments")),
        sent_at=None,
        conversation_id=None,
        received_at=datetime.now(UTC),
        recipient=WIDGET,
        vendor_fields={"message_id": message_id},
    )


WIDGET_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Chat with us</title>
<style>
body{margin:0;font:15px/1.4 system-ui,sans-serif;background:#f6f7f9;display:flex;flex-direction:column;height:100vh}
header{background:#1f6feb;color:#fff;padding:10px 14px;font-weight:600}
#log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px}
.m{max-width:80%;padding:7px 10px;border-radius:12px;white-space:pre-wrap;word-wrap:break-word}
.me{align-self:flex-end;background:#1f6feb;color:#fff}.them{align-self:flex-start;background:#fff;border:1px solid #dde}
#status{font-size:12px;color:#667;padding:0 12px}
form{display:flex;gap:6px;padding:10px;border-top:1px solid #dde;background:#fff}
input{flex:1;padding:8px;border:1px solid #ccd;border-radius:8px}button{padding:8px 14px;border:0;border-radius:8px;background:#1f6feb;color:#fff}
</style></head><body>
<header>Chat with us</header><div id="log" aria-live="polite"></div><div id="status">connecting…</div>
<form id="f"><input id="t" autocomplete="off" placeholder="Type a message" maxlength="10000"><button>Send</button></form>
<script>
(() => {
  const base = location.origin, store = window.localStorage, log = document.getElementById("log");
  const status = document.getElementById("status");
  let session = JSON.parse(store.getItem("omni.webchat.session") || "null");
  let cursor = Number(store.getItem("omni.webchat.cursor") || "0"), ws = null, retry = 500;
  const show = (cls, text) => {
    const d = document.createElement("div"); d.className = "m " + cls; d.textContent = text;
    log.appendChild(d); log.scrollTop = log.scrollHeight;
  };
  async function open() {
    const r = await fetch(base + "/webchat/v1/sessions", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify(session ? {token: session.token} : {})});
    if (!r.ok) throw new Error("session " + r.status);
    session = await r.json(); store.setItem("omni.webchat.session", JSON.stringify(session));
    const ms = Date.parse(session.expires_at) - Date.now() - 60000;
    setTimeout(() => open().catch(() => {}), Math.max(ms, 10000));
  }
  function connect() {
    const url = base.replace(/^http/, "ws") + "/webchat/v1/stream?cursor=" + cursor;
    ws = new WebSocket(url, ["webchat.v1", "bearer." + session.token]);
    ws.onopen = () => { retry = 500; status.textContent = "connected"; };
    ws.onmessage = (e) => {
      const f = JSON.parse(e.data);
      if (f.type === "message") {
        show("them", f.text); cursor = f.cursor; store.setItem("omni.webchat.cursor", String(cursor));
      }
    };
    ws.onclose = (e) => {
      status.textContent = "reconnecting…";
      const wait = retry; retry = Math.min(retry * 2, 15000);
      // 4001: the token expired while connected; renew it (same visitor id), then resume from the cursor.
      setTimeout(() => (e.code === 4001 ? open() : Promise.resolve()).then(connect).catch(() => ws.onclose(e)), wait);
    };
  }
  document.getElementById("f").addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = document.getElementById("t"), text = input.value.trim();
    if (!text) return;
    input.value = ""; show("me", text);
    const id = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/:/g, "");
    const r = await fetch(base + "/webchat/v1/messages", {method: "POST",
      headers: {"Content-Type": "application/json", "Authorization": "Bearer " + session.token},
      body: JSON.stringify({message_id: id, text})});
    status.textContent = r.ok ? "sent" : "not sent (" + r.status + ")";
  });
  open().then(connect).catch((err) => { status.textContent = "chat unavailable"; });
})();
</script></body></html>
"""
