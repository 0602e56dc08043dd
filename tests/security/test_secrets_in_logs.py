"""No secret the services were given ever appears in their logs, at DEBUG, after traffic that includes
failures (bad signatures, wrong tokens, a bad body) and a real agent flow."""

from __future__ import annotations

import asyncio
import secrets

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from tests.e2e.suite import Suite
from tests.security.conftest import SECRETS

pytestmark = pytest.mark.integration


async def test_no_secret_in_any_log_line(suite: Suite) -> None:
    admin = {"Authorization": f"Bearer {SECRETS['OMNI_ADMIN_TOKEN']}"}
    gw = suite.url("channel-gateway") + "/webhooks/twilio/messaging"
    url = suite.public_url + "/webhooks/twilio/messaging"
    async with aiohttp.ClientSession() as http:
        async with http.post(suite.url("agent-presence") + "/v1/agents", headers=admin,
                             json={"id": "sec-logs", "name": "L", "skills": {"billing": 5}, "capacity": {"sms": 2}}) as r:  # fmt: skip
            agent_token = (await r.json())["token"]
        for n in range(3):
            data = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32,
                    "From": f"+1415555{n:04d}", "To": "+18005550199", "Body": f"hi {n}", "NumMedia": "0"}  # fmt: skip
            good = RequestValidator(SECRETS["TWILIO_AUTH_TOKEN"]).compute_signature(url, data)
            for headers in ({"X-Twilio-Signature": good}, {"X-Twilio-Signature": "bad"}, {}):
                async with http.post(gw, data=data, headers=headers) as r:
                    await r.read()
        async with http.post(
            gw, data=b"\xff\x00not a form", headers={"Content-Type": "application/json"}
        ) as r:
            await r.read()
        for service in ("agent-presence", "identity-resolution", "routing"):
            for headers in (
                admin,
                {"Authorization": "Bearer wrong"},
                {"Authorization": f"Bearer {agent_token}"},
            ):
                async with http.get(suite.url(service) + "/v1/agents/sec-logs/state", headers=headers) as r:
                    await r.read()
        async with http.ws_connect(suite.url("agent-presence").replace("http", "ws", 1) + "/v1/agents/sec-logs/ws",
                                   headers={"Authorization": f"Bearer {agent_token}"}) as ws:  # fmt: skip
            await ws.send_json({"type": "status", "status": "available"})
            await asyncio.sleep(2)
    await asyncio.sleep(1)  # let the services write what they log about it
    values = {name: value for name, value in SECRETS.items()} | {"agent token": agent_token}
    leaks = []
    for service, path in suite.logs.items():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            leaks.extend(f"{service}.log:{number}: {name}" for name, v in values.items() if v in line)
    assert sum(p.stat().st_size for p in suite.logs.values()) > 0, "the services logged nothing at all"
    assert not leaks, "secrets in the logs:\n" + "\n".join(leaks[:20])
