"""Offers reach the agent whichever replica consumed the decision, and survive a reconnect."""

from __future__ import annotations

import uuid

import aiohttp
import pytest

from omnirouter_shared.contracts.routing import OfferRescinded
from omnirouter_shared.topics import Topic
from tests.presence.harness import (
    create_agent,
    frames_for,
    make_settings,
    next_frame,
    offered,
    routing_stub,
    running_presence,
    task_view,
    wait_feed,
    watch,
)

pytestmark = pytest.mark.integration


async def test_a_decision_consumed_by_one_replica_reaches_a_socket_on_another(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    db = await make_database()
    consumer_replica = make_settings(kafka_bootstrap, db, topic_prefix, instance_id="presence-a")
    # Replica B serves desktops only: the decision can only be consumed by A.
    socket_replica = make_settings(
        kafka_bootstrap, db, topic_prefix, instance_id="presence-b", consume_decisions=False
    )
    async with (
        running_presence(consumer_replica) as a,
        running_presence(socket_replica, migrated=True) as b,
        routing_stub(consumer_replica) as routing,
        aiohttp.ClientSession() as http,
    ):
        created = await create_agent(http, a)
        agent_id = created["id"]
        async with http.ws_connect(
            b.ws_url(agent_id), headers={"Authorization": f"Bearer {created['token']}"}
        ) as ws:
            await next_frame(ws, "state")
            offer = offered(agent_id, task_view())
            await routing(offer, agent_id)
            frame = await next_frame(ws, "offer")
            assert frame["offer_id"] == offer.offer_id
            assert frame["seq"] == 1


async def test_an_offer_made_while_disconnected_is_resent_on_reconnect_and_can_be_accepted(
    kafka_bootstrap: str, make_database, topic_prefix: str
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(kafka_bootstrap, await make_database(), topic_prefix)
    async with (
        watch(kafka_bootstrap, topic_prefix, Topic.ROUTING_INBOX) as inbox,
        running_presence(settings) as presence,
        routing_stub(settings) as routing,
        aiohttp.ClientSession() as http,
    ):
        created = await create_agent(http, presence)
        agent_id = created["id"]
        url = f"{presence.ws_url(agent_id)}?token={created['token']}"  # the browsers' way
        async with http.ws_connect(url) as ws:
            await next_frame(ws, "state")
            await ws.send_json({"type": "status", "status": "available"})
            await next_frame(ws, "ack")
        # The desktop is gone (a network blip); routing offers it work meanwhile.
        first = offered(agent_id, task_view())
        event_id = str(uuid.uuid4())
        await routing(first, agent_id, event_id=event_id)
        await routing(first, agent_id, event_id=event_id)  # a redelivered decision changes nothing
        gone = offered(agent_id, task_view())
        await routing(gone, agent_id)
        await routing(
            OfferRescinded(offer_id=gone.offer_id, task_id=gone.task.id, agent_id=agent_id, reason="timeout"),
            agent_id,
        )

        # Status frame, two offers, one rescind: wait until presence has consumed them all.
        await wait_feed(http, presence, agent_id, created["token"], 4)
        async with http.ws_connect(url) as ws:
            frames = await frames_for(ws, 1.0)
            offers = [f for f in frames if f["type"] == "offer"]
            assert [f["offer_id"] for f in offers] == [first.offer_id], frames
            assert offers[0]["resumed"] is True
            assert frames[0]["type"] == "state" and frames[0]["status"] == "available"

            # Asking to resume re-sends the same pending work (idempotent for the client).
            await ws.send_json({"type": "resume", "ref": "r1"})
            again = await frames_for(ws, 1.0)
            assert [f["offer_id"] for f in again if f["type"] == "offer"] == [first.offer_id]
            assert any(f["type"] == "ack" and f["ref"] == "r1" for f in again)

            await ws.send_json({"type": "accept", "offer_id": first.offer_id})
            ack = await next_frame(ws, "ack")
            assert ack["task_id"] == first.task.id
            _, accepted = await inbox.wait_for("offer.accepted")
            assert accepted.payload["offer_id"] == first.offer_id

            # The rescinded offer cannot be accepted any more.
            await ws.send_json({"type": "accept", "offer_id": gone.offer_id, "ref": "late"})
            error = await next_frame(ws, "error")
            assert error["error"] == "offer_not_pending" and error["ref"] == "late"
        assert len(inbox.of_type("offer.accepted")) == 1
