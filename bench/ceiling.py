"""The bare ceiling, as its own process: an aiohttp handler that only produces the payload to the broker
with acks=all and answers 200. Whatever the suite adds (signature checks, validation, dedup, identity,
routing, presence) is measured against what this machine and broker allow at all.

    python -m bench.ceiling --port P --bootstrap HOST:PORT --topic bench.ceiling

Prints ``READY`` once it listens and its producer is connected.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

PRODUCER = web.AppKey("producer", AIOKafkaProducer)
TOPIC = web.AppKey("topic", str)


def envelope_bytes(fields: dict[str, str]) -> bytes:
    """The size and shape of the gateway's event: an envelope around the normalised interaction."""
    now = datetime.now(UTC).isoformat()
    event_id = str(uuid.uuid4())
    return orjson.dumps(
        {
            "envelope_version": 1,
            "event_id": event_id,
            "type": "interaction.received",
            "schema_version": 1,
            "occurred_at": now,
            "correlation_id": event_id,
            "routing_domain": "default",
            "producer": "bench-ceiling",
            "payload": {
                "interaction_id": event_id,
                "kind": "message",
                "channel": "sms",
                "vendor": "twilio",
                "vendor_message_id": fields.get("MessageSid", event_id),
                "sender": {"kind": "phone", "value": fields.get("From", "")},
                "recipient": {"kind": "phone", "value": fields.get("To", "")},
                "text": fields.get("Body"),
                "received_at": now,
                "vendor_fields": fields,
            },
        }
    )


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    fields = dict(parse_qsl(body.decode(errors="replace")))
    try:
        await request.app[PRODUCER].send_and_wait(
            request.app[TOPIC], envelope_bytes(fields), key=fields.get("From", "").encode()
        )
    except KafkaError as exc:
        return web.json_response({"error": "broker_unavailable", "reason": str(exc)}, status=503)
    return web.Response(text="<Response/>", content_type="text/xml")


async def ensure_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        if topic not in set(await admin.list_topics()):
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def serve(port: int, bootstrap: str, topic: str, partitions: int) -> None:
    await ensure_topic(bootstrap, topic, partitions)
    # The gateway's producer settings (shared EventProducer): acks=all, no idempotence (Tansu), no linger.
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0, max_batch_size=1 << 20
    )
    await producer.start()
    app = web.Application()
    app[PRODUCER] = producer
    app[TOPIC] = topic
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        print("READY", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
        await producer.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ceiling", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default="bench.ceiling")
    parser.add_argument("--partitions", type=int, default=12)
    args = parser.parse_args(argv)
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(serve(args.port, args.bootstrap, args.topic, args.partitions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
