"""routing's inbox consumer (group routing, omni.routing.inbox): poison is dead-lettered and the events
after it in the same domain's partition are still routed."""

from __future__ import annotations

from pathlib import Path

import pytest

from omnirouter_routing.service.processor import GROUP
from omnirouter_shared.contracts.common import Channel
from omnirouter_shared.contracts.envelope import new_envelope
from omnirouter_shared.topics import Topic
from tests.poison.kit import DeadLetters, assert_dead_lettered, send_poisons
from tests.routing.factories import agent, interaction, status
from tests.routing.integration.harness import (
    DOMAIN,
    DecisionWatcher,
    Inbox,
    make_settings,
    start_routing,
    write_config,
)

pytestmark = pytest.mark.integration


async def test_inbox_consumer_dead_letters_poison_and_moves_on(
    kafka_bootstrap: str,
    topic_prefix: str,
    routing_db: str,
    inbox: Inbox,
    decisions: DecisionWatcher,
    tmp_path: Path,
) -> None:
    settings = make_settings(kafka_bootstrap, routing_db, topic_prefix, write_config(tmp_path / "r.yaml"))
    routing = await start_routing(settings)
    try:
        async with DeadLetters(kafka_bootstrap, topic_prefix) as dead:
            contact = interaction("cust-p", "int-p", Channel.WEBCHAT, text="after the poison")
            sample = new_envelope(contact, producer="test", routing_domain=DOMAIN)
            sent = await send_poisons(inbox._producer, Topic.ROUTING_INBOX, DOMAIN, sample)
            await inbox.send(agent("ag-p", capacity={Channel.WEBCHAT: 1}))
            await inbox.send(status("ag-p"))
            await inbox.send(contact)
            (offer,) = await decisions.wait_for("task.offered")
            assert offer.payload["task"]["customer_id"] == "cust-p"
            found = await dead.wait_for(GROUP, Topic.ROUTING_INBOX, len(sent))
            assert_dead_lettered(found, sent, DOMAIN, GROUP, settings.topic(Topic.ROUTING_INBOX))
    finally:
        await routing.stop()
