"""The OpenAPI and AsyncAPI documents describe exactly what the service serves and speaks."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import aiohttp
import pytest
import yaml

from omnirouter_presence.domain.protocol import ClientCommand
from tests.presence.harness import make_settings, running_presence

SERVICE = Path(__file__).resolve().parents[2] / "services" / "agent-presence"


def _command_types() -> set[str]:
    union = typing.get_args(ClientCommand)[0]
    return {typing.get_args(m.model_fields["type"].annotation)[0] for m in typing.get_args(union)}


def test_the_asyncapi_document_lists_every_client_command_and_server_frame() -> None:
    doc = yaml.safe_load((SERVICE / "asyncapi-ws.yaml").read_text())
    messages = set(doc["components"]["messages"])
    assert _command_types() <= messages
    assert {"offer", "rescind", "assigned", "message", "error", "state", "ack", "closed"} <= messages
    sent = {m["$ref"].rsplit("/", 1)[1] for m in doc["operations"]["sendCommands"]["messages"]}
    assert sent == _command_types()


@pytest.mark.integration
async def test_the_openapi_document_covers_every_route(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with running_presence(settings) as presence, aiohttp.ClientSession() as http:
        async with http.get(f"{presence.url}/openapi.yaml") as r:
            assert r.status == 200
            doc = yaml.safe_load(await r.text())
        async with http.get(f"{presence.url}/asyncapi-ws.yaml") as r:
            assert r.status == 200
        served: set[tuple[str, str]] = set()
        for route in presence.app.router.routes():
            info = route.resource.get_info() if route.resource is not None else {}
            path = info.get("path") or info.get("formatter")
            if (
                route.method in {"HEAD", "*"}
                or not path
                or path in {"/", "/livez"}
                or "." in path.rsplit("/", 1)[1]
            ):
                continue
            if path in {"/desk", "/wallboard"}:
                continue
            served.add((route.method.lower(), re.sub(r"\{(\w+)\}", r"{\1}", path)))
        documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
        missing = {(m, p) for m, p in served if (m, p) not in documented}
        assert len(served) > 20 and not missing, missing
