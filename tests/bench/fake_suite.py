"""A stand-in for the suite that speaks the agent contract and can be told to lose or double work, so the
harness's own counting is checked against known answers (it is the harness under test, not the suite)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from aiohttp import WSMsgType, web


@dataclass
class Task:
    id: str
    customer: str
    agent: str
    messages: list[dict[str, Any]]
    assigned: bool = False


@dataclass
class FakeSuite:
    admin_token: str
    #: Drop every n-th new message (accepted with 200, never shown to an agent); 0 never.
    drop_every: int = 0
    #: Send every n-th new offer twice; 0 never.
    double_every: int = 0
    dropped: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    sockets: dict[str, web.WebSocketResponse] = field(default_factory=dict)
    open_tasks: dict[str, Task] = field(default_factory=dict)  # by customer
    tasks: dict[str, Task] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/twilio/messaging", self.twilio)
        app.router.add_post("/webhooks/meta", self.meta)
        app.router.add_post("/webhooks/telegram", self.telegram)
        app.router.add_post("/v1/agents", self.create_agent)
        app.router.add_get("/v1/agents/{id}/ws", self.desk)
        return app

    async def twilio(self, request: web.Request) -> web.Response:
        form = dict(parse_qsl((await request.read()).decode()))
        await self._message(form["MessageSid"], form["From"].removeprefix("whatsapp:"), form["Body"])
        return web.Response(text="<Response/>", content_type="text/xml")

    async def meta(self, request: web.Request) -> web.Response:
        msg = orjson.loads(await request.read())["entry"][0]["changes"][0]["value"]["messages"][0]
        await self._message(msg["id"], "+" + msg["from"], msg["text"]["body"])
        return web.Response()

    async def telegram(self, request: web.Request) -> web.Response:
        update = orjson.loads(await request.read())
        msg = update["message"]
        await self._message(str(update["update_id"]), f"tg:{msg['from']['id']}", msg["text"])
        return web.Response()

    async def _message(self, vendor_id: str, customer: str, text: str) -> None:
        if vendor_id in self.seen_ids:
            return  # a redelivery
        self.seen_ids.add(vendor_id)
        n = next(self._counter) + 1
        token = text.rsplit("[", 1)[-1].rstrip("]")
        if self.drop_every and n % self.drop_every == 0:
            self.dropped.append(token)
            return
        message = {"interaction_id": f"i-{vendor_id}", "text": text}
        task = self.open_tasks.get(customer)
        if task is not None:
            task.messages.append(message)
            if task.assigned:
                await self._push(task.agent, {"type": "message", "task_id": task.id, "message": message})
            return
        agents = sorted(self.sockets)
        agent = agents[next(self._rr) % len(agents)]
        task = Task(f"t{n}", customer, agent, [message])
        self.open_tasks[customer] = self.tasks[task.id] = task
        offer = {
            "type": "offer",
            "offer_id": f"o{n}",
            "task": {"id": task.id, "messages": list(task.messages)},
        }
        await self._push(agent, offer)
        if self.double_every and n % self.double_every == 0:
            self.doubled.append(token)
            await self._push(agent, offer)

    async def _push(self, agent: str, frame: dict[str, Any]) -> None:
        await self.sockets[agent].send_str(orjson.dumps(frame).decode())

    async def create_agent(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.admin_token}":
            return web.json_response({"error": "unauthorized", "reason": "admin token"}, status=401)
        body = await request.json()
        return web.json_response({"id": body["id"], "token": f"tok-{body['id']}"}, status=201)

    async def desk(self, request: web.Request) -> web.WebSocketResponse:
        agent = request.match_info["id"]
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                break
            frame = orjson.loads(msg.data)
            kind = frame.get("type")
            if kind == "status" and frame.get("status") == "available":
                self.sockets[agent] = ws
            elif kind == "accept":
                task = self.tasks[frame["task_id"]]
                task.assigned = True
                await self._push(
                    agent, {"type": "assigned", "task": {"id": task.id, "messages": task.messages}}
                )
            elif kind == "complete":
                task = self.tasks[frame["task_id"]]
                if self.open_tasks.get(task.customer) is task:
                    del self.open_tasks[task.customer]
        self.sockets.pop(agent, None)
        return ws
