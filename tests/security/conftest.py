"""One suite (four services as processes) for the security tests, run with secrets nobody else uses, so
that the log test can look for them verbatim."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.suite import Suite, running_suite

LOGS = Path(__file__).resolve().parents[1] / "artifacts" / "security"

#: Every secret the services are given, with values that cannot appear in a log by chance.
SECRETS = {
    name: f"sek{name.lower().replace('_', '')[:6]}{secrets.token_hex(12)}"
    for name in (
        "OMNI_ADMIN_TOKEN",
        "OMNI_API_TOKENS",
        "TWILIO_AUTH_TOKEN",
        "META_APP_SECRET",
        "META_VERIFY_TOKEN",
        "MAILGUN_SIGNING_KEY",
        "VONAGE_SIGNATURE_SECRET",
        "TELEGRAM_SECRET_TOKEN",
        "WEBCHAT_TOKEN_SECRET",
    )
}


@pytest.fixture(scope="package")
async def suite(kafka_bootstrap: str, pg_admin_url: str) -> AsyncIterator[Suite]:
    import asyncpg

    name = f"sec_{secrets.token_hex(6)}"
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    db = pg_admin_url.rpartition("/")[0] + "/" + name
    prefix = f"s{secrets.token_hex(4)}."
    from omnirouter_shared.kafka.admin import ensure_topics

    await ensure_topics(kafka_bootstrap, prefix=prefix, partitions_override=3)
    async with running_suite(kafka_bootstrap, db, prefix, LOGS, LOG_LEVEL="DEBUG", **SECRETS) as s:
        yield s
