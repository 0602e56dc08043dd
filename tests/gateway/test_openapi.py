"""The OpenAPI document describes exactly what the gateway serves."""

from __future__ import annotations

import aiohttp
import pytest
import yaml

from tests.gateway.harness import Gateway

pytestmark = pytest.mark.integration


async def test_the_openapi_document_is_valid_and_covers_every_route(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http, http.get(gateway.url + "/openapi.yaml") as r:
        assert r.status == 200
        doc = yaml.safe_load(await r.text())
    assert doc["openapi"].startswith("3.1")
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} documents no responses"
    served: set[tuple[str, str]] = set()
    for route in gateway.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method in {"HEAD", "*"} or not path or path == "/livez":
            continue
        served.add((route.method.lower(), path))
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert not served - documented, served - documented
    webhooks = {p for _, p in served if p.startswith("/webhooks/")}
    assert {
        "/webhooks/twilio/messaging",
        "/webhooks/twilio/voice",
        "/webhooks/twilio/voice/status",
    } <= webhooks
