"""`omni-dev`: the whole suite on the embedded default (`make run`), and small tools to try it.

omni-dev run        broker + PostgreSQL + topics + migrations + the four services; Ctrl-C stops all
omni-dev agent ID   create agent ID (if needed), connect it over WebSocket, go available, accept offers
omni-dev webhook    send a signed Twilio SMS webhook to the gateway
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp

from omnirouter_shared.devstack.ports import free_port, port_open
from omnirouter_shared.devstack.services import SERVICES, run_migrations, start_services, stop_services
from omnirouter_shared.devstack.twilio_sign import curl_command, example_sms, twilio_signature
from omnirouter_shared.kafka.admin import ensure_topics

ROOT = Path.cwd()
DEV_ENV = ROOT / "deploy" / "config" / "dev.env"


def load_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    if not path.exists():
        return env
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            env[k.strip()] = v.strip()
    return env


def _say(msg: str) -> None:
    print(f"\033[1momni-dev\033[0m | {msg}" if sys.stdout.isatty() else f"omni-dev | {msg}", flush=True)


def _pick_port(preferred: int) -> int:
    return preferred if not port_open("127.0.0.1", preferred) else free_port()


async def _ensure_database(admin_url: str, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


async def _wait_ready(ports: dict[str, int], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    pending = dict(ports)
    async with aiohttp.ClientSession() as http:
        while pending and time.monotonic() < deadline:
            for name, port in list(pending.items()):
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(
                        f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            pending.pop(name)
            await asyncio.sleep(0.3)
    return sorted(pending)


async def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    env = {**os.environ}
    for k, v in load_env_file(DEV_ENV).items():
        env.setdefault(k, v)
    broker = pg = None
    try:
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            _say(f"using Kafka at {env['KAFKA_BOOTSTRAP_SERVERS']}")
        else:
            from omnirouter_shared.devstack.broker import start_broker

            (ROOT / ".data").mkdir(exist_ok=True)
            broker = start_broker(_pick_port(9092), log_path=ROOT / ".data" / "broker.log")
            env["KAFKA_BOOTSTRAP_SERVERS"] = broker.bootstrap
            _say(f"started the embedded Kafka-compatible broker (Tansu) at {broker.bootstrap}")
        if env.get("DATABASE_URL"):
            _say("using PostgreSQL from DATABASE_URL")
        else:
            from omnirouter_shared.devstack.postgres import start_postgres

            pg = start_postgres(ROOT / ".data" / "postgres", _pick_port(5432))
            env["DATABASE_URL"] = await _ensure_database(pg.url(), "omnirouter")
            _say(f"started embedded PostgreSQL 18 at 127.0.0.1:{pg.port} (data in .data/postgres)")
        created = await ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], prefix=env.get("OMNI_TOPIC_PREFIX", ""))
        _say(f"topics ready ({len(created)} created)")
        await run_migrations(env)
        _say("database migrated")
        ports = {
            name: int(env.get(f"{name.upper().replace('-', '_')}_PORT", default))
            for name, _, default in SERVICES
        }
        children = await start_services(env, ports)
        missing = await _wait_ready(ports, timeout=args.ready_timeout)
        if missing:
            _say(f"not ready after {args.ready_timeout:.0f}s: {', '.join(missing)} (see their logs above)")
        else:
            _say(f"all four services ready in {time.monotonic() - started:.1f}s")
        _print_welcome(env, ports)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        exited = asyncio.ensure_future(
            asyncio.wait(
                [asyncio.ensure_future(c.process.wait()) for c in children],
                return_when=asyncio.FIRST_COMPLETED,
            )
        )
        await asyncio.wait([asyncio.ensure_future(stop.wait()), exited], return_when=asyncio.FIRST_COMPLETED)
        _say("stopping the services (they finish in-flight work and commit)...")
        await stop_services(children)
        return 0 if stop.is_set() else 1
    finally:
        if pg is not None:
            pg.stop()
        if broker is not None:
            broker.stop()
        _say("stopped")


def _print_welcome(env: dict[str, str], ports: dict[str, int]) -> None:
    public = env.get("OMNI_PUBLIC_URL", f"http://127.0.0.1:{ports['channel-gateway']}").rstrip("/")
    url = f"{public}/webhooks/twilio/messaging"
    params = example_sms(
        f"SM{uuid.uuid4().hex}",
        "+14155550100",
        "+18005550199",
        "Hi, I was promised a refund by email, can someone help with my bill?",
    )
    admin = env.get("OMNI_ADMIN_TOKEN", "")
    lines = [
        "",
        "Omnirouter is running:",
        f"  channel-gateway      http://127.0.0.1:{ports['channel-gateway']}  (vendor webhooks, /openapi.yaml)",
        f"  agent-presence       http://127.0.0.1:{ports['agent-presence']}  (agents' API, /desk/, /wallboard/)",
        f"  identity-resolution  http://127.0.0.1:{ports['identity-resolution']}",
        f"  routing              http://127.0.0.1:{ports['routing']}  (/v1/stats)",
        "",
        "1. Connect an agent (in another terminal; creates it, goes available, accepts offers):",
        "     .venv/bin/omni-dev agent alice",
        "   or by hand:",
        f"     curl -sS -X POST http://127.0.0.1:{ports['agent-presence']}/v1/agents "
        f"-H 'Authorization: Bearer {admin}' -H 'Content-Type: application/json' "
        """-d '{"id": "alice", "name": "Alice", "skills": {"billing": 3}, "capacity": {"sms": 3, "voice": 1}}'""",
        "",
        "2. Send a first signed webhook (a customer's SMS through Twilio):",
        f"     {curl_command(url, env.get('TWILIO_AUTH_TOKEN', ''), params)}",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    print("\n".join(lines), flush=True)


async def cmd_agent(args: argparse.Namespace) -> int:
    import orjson

    env = {**load_env_file(DEV_ENV), **os.environ}
    base = args.presence.rstrip("/")
    admin = env.get("OMNI_ADMIN_TOKEN", "")
    body = {
        "id": args.id,
        "name": args.name or args.id.title(),
        "skills": dict(s.split("=") for s in args.skill) if args.skill else {"billing": 3, "general": 3},
        "capacity": {
            "sms": 3,
            "whatsapp": 3,
            "email": 5,
            "webchat": 2,
            "voice": 1,
            "messenger": 3,
            "instagram": 3,
            "telegram": 3,
            "mms": 3,
        },
    }
    body["skills"] = {k: int(v) for k, v in body["skills"].items()}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{base}/v1/agents", json=body, headers={"Authorization": f"Bearer {admin}"}
        ) as r:
            data = await r.json()
            if r.status == 201:
                token = data["token"]
            elif r.status == 409:
                async with http.post(
                    f"{base}/v1/agents/{args.id}/token", headers={"Authorization": f"Bearer {admin}"}
                ) as r2:
                    if r2.status not in (200, 201):
                        print(f"agent exists and its token could not be rotated: {await r2.text()}")
                        return 1
                    token = (await r2.json())["token"]
            else:
                print(f"could not create the agent: {r.status} {data}")
                return 1
        print(f"agent {args.id} token: {token}")
        ws_url = base.replace("http", "ws", 1) + f"/v1/agents/{args.id}/ws"
        async with http.ws_connect(ws_url, headers={"Authorization": f"Bearer {token}"}, heartbeat=20) as ws:
            await ws.send_json({"type": "status", "status": "available"})
            print("connected and available; waiting for offers (Ctrl-C to leave)")
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = orjson.loads(msg.data)
                print(orjson.dumps(frame, option=orjson.OPT_INDENT_2).decode())
                if frame.get("type") == "offer" and not args.no_accept:
                    await ws.send_json(
                        {"type": "accept", "task_id": frame["task"]["id"], "offer_id": frame.get("offer_id")}
                    )
    return 0


async def cmd_webhook(args: argparse.Namespace) -> int:
    env = {**load_env_file(DEV_ENV), **os.environ}
    public = env.get("OMNI_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/")
    url = f"{public}/webhooks/twilio/messaging"
    params = example_sms(args.sid or f"SM{uuid.uuid4().hex}", args.sender, args.to, args.text)
    sig = twilio_signature(env.get("TWILIO_AUTH_TOKEN", ""), url, params)
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=params, headers={"X-Twilio-Signature": sig}) as r,
    ):
        print(r.status, await r.text())
        return 0 if r.status == 200 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="omni-dev", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the whole suite on the embedded default")
    run.add_argument("--ready-timeout", type=float, default=60.0)
    agent = sub.add_parser("agent", help="connect a demo agent")
    agent.add_argument("id")
    agent.add_argument("--name")
    agent.add_argument("--skill", action="append", help="skill=proficiency, repeatable")
    agent.add_argument("--presence", default="http://127.0.0.1:8081")
    agent.add_argument("--no-accept", action="store_true")
    hook = sub.add_parser("webhook", help="send a signed Twilio SMS webhook")
    hook.add_argument("text", nargs="?", default="Hello, I need help with my bill")
    hook.add_argument("--sender", default="+14155550100")
    hook.add_argument("--to", default="+18005550199")
    hook.add_argument("--sid")
    args = parser.parse_args(argv)
    handler = {"run": cmd_run, "agent": cmd_agent, "webhook": cmd_webhook}[args.command]
    try:
        return asyncio.run(handler(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
