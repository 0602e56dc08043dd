"""Telegram Bot API updates through the real broker, built and read back with python-telegram-bot."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import aiohttp
import pytest
from telegram import (
    CallbackQuery,
    Chat,
    Document,
    Message,
    PhotoSize,
    Update,
    User,
    Voice,
)

from omnirouter_gateway.inbound.telegram import HEADER
from omnirouter_shared.contracts.interactions import interaction_id_for
from omnirouter_shared.topics import Topic
from tests.conftest import MakeDatabase
from tests.gateway.harness import Gateway, running_gateway

pytestmark = pytest.mark.integration

PATH = "/webhooks/telegram"
SENT = datetime(2025, 6, 8, 12, 0, tzinfo=UTC)
ANN = User(id=7_310_000_042, first_name="Ann", last_name="Lee", is_bot=False, username="annlee")
PRIVATE = Chat(id=ANN.id, type=Chat.PRIVATE, first_name="Ann")


def _token(gw: Gateway) -> str:
    return gw.settings.telegram_secret_token.get_secret_value()  # type: ignore[union-attr]


async def _post(
    http: aiohttp.ClientSession,
    gw: Gateway,
    update: Update | bytes,
    *,
    token: str | None = None,
    content_type: str = "application/json",
) -> aiohttp.ClientResponse:
    body = update if isinstance(update, bytes) else update.to_json().encode()
    if isinstance(update, Update):
        # What we send is an update python-telegram-bot itself reads back.
        assert Update.de_json(update.to_dict(), None) == update
    headers = {"Content-Type": content_type}
    if token != "":
        headers[HEADER] = token or _token(gw)
    resp = await http.post(gw.url + PATH, data=body, headers=headers)
    await resp.read()
    return resp


def _update_id() -> int:
    return uuid.uuid4().int % 1_000_000_000


async def test_a_message_is_published_once_with_its_fields(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    message = Message(message_id=501, date=SENT, chat=PRIVATE, from_user=ANN, text="Is my order shipped?")
    update = Update(update_id=_update_id(), message=message)
    async with aiohttp.ClientSession() as http:
        first = await _post(http, gateway, update)
        assert first.status == 200
        assert await first.text() == ""
        for _ in range(3):
            assert (await _post(http, gateway, update)).status == 200
    events = await inbound.settle(1.5)
    assert len(events) == 1, events
    env = events[0]
    p = env["payload"]
    assert env["type"] == "interaction.received"
    assert p["channel"] == "telegram" and p["vendor"] == "telegram"
    assert p["vendor_message_id"] == f"bot:msg:{ANN.id}:501"
    assert env["event_id"] == interaction_id_for("telegram", "bot:msg:7310000042:501")
    assert p["sender"] == {**p["sender"], "kind": "telegram", "value": str(ANN.id), "display_name": "Ann Lee"}
    assert p["text"] == "Is my order shipped?"
    assert p["sent_at"].startswith("2025-06-08T12:00:00")
    assert p["vendor_fields"]["chat_id"] == str(ANN.id)
    assert p["thread"]["vendor_conversation_id"] == str(ANN.id)
    assert inbound.keys[0] == f"telegram:{ANN.id}".encode()


async def test_edits_buttons_and_files_are_their_own_events(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    original = Message(message_id=600, date=SENT, chat=PRIVATE, from_user=ANN, text="helo")
    edited = Message(
        message_id=600,
        date=SENT,
        edit_date=datetime(2025, 6, 8, 12, 1, tzinfo=UTC),
        chat=PRIVATE,
        from_user=ANN,
        text="hello",
    )
    question = Message(message_id=601, date=SENT, chat=PRIVATE, text="Was this helpful?")
    pressed = CallbackQuery(
        id="4382bfdwdsb323b2d9", from_user=ANN, chat_instance="-8421", data="helpful:yes", message=question
    )
    photo = Message(
        message_id=602,
        date=SENT,
        chat=PRIVATE,
        from_user=ANN,
        caption="broken on arrival",
        photo=(
            PhotoSize("AgAD-small", "uniq-s", 90, 67),
            PhotoSize("AgAD-large", "uniq-l", 1280, 960, file_size=120_000),
        ),
    )
    document = Message(
        message_id=603,
        date=SENT,
        chat=PRIVATE,
        from_user=ANN,
        document=Document("BQAD-doc", "uniq-d", file_name="invoice.pdf", mime_type="application/pdf"),
    )
    voice = Message(
        message_id=604,
        date=SENT,
        chat=PRIVATE,
        from_user=ANN,
        voice=Voice("AwAD-voice", "uniq-v", duration=3, mime_type="audio/ogg"),
    )
    updates = [
        Update(update_id=_update_id(), message=original),
        Update(update_id=_update_id(), edited_message=edited),
        Update(update_id=_update_id(), callback_query=pressed),
        Update(update_id=_update_id(), message=photo),
        Update(update_id=_update_id(), message=document),
        Update(update_id=_update_id(), message=voice),
    ]
    async with aiohttp.ClientSession() as http:
        for update in updates:
            assert (await _post(http, gateway, update)).status == 200
    events = await inbound.settle(2.0)
    by_id = {e["payload"]["vendor_message_id"]: e["payload"] for e in events}
    assert len(events) == 6 and len(by_id) == 6
    assert by_id["bot:msg:7310000042:600"]["text"] == "helo"
    edit_id = f"bot:edit:{ANN.id}:600:{int(edited.edit_date.timestamp())}"  # type: ignore[union-attr]
    assert by_id[edit_id]["text"] == "hello"
    button = by_id["bot:callback:4382bfdwdsb323b2d9"]
    assert button["text"] == "helpful:yes"
    assert button["thread"]["in_reply_to"] == "601"
    assert button["vendor_fields"]["chat_id"] == str(ANN.id)
    pic = by_id["bot:msg:7310000042:602"]
    assert pic["text"] == "broken on arrival"
    assert pic["attachments"] == [
        {"url": "telegram-file:AgAD-large", "content_type": "image/jpeg", "filename": None, "size": 120000}
    ]
    doc = by_id["bot:msg:7310000042:603"]["attachments"][0]
    assert doc == {**doc, "url": "telegram-file:BQAD-doc", "filename": "invoice.pdf"}
    assert doc["content_type"] == "application/pdf"
    assert by_id["bot:msg:7310000042:604"]["attachments"][0]["content_type"] == "audio/ogg"


async def test_unknown_update_kinds_are_acknowledged_not_published(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    poll_answer = (
        b'{"update_id": 9001, "poll_answer": {"poll_id": "1", "user": {"id": 1, "is_bot": false,'
        b' "first_name": "A"}, "option_ids": [0]}}'
    )
    async with aiohttp.ClientSession() as http:
        r = await _post(http, gateway, poll_answer)
        assert r.status == 200
        joined = Message(
            message_id=700,
            date=SENT,
            chat=Chat(id=-100123, type=Chat.SUPERGROUP, title="Support"),
            from_user=ANN,
            new_chat_members=(ANN,),
        )
        assert (await _post(http, gateway, Update(update_id=_update_id(), message=joined))).status == 200
    assert await inbound.settle(1.0) == []


async def test_bad_and_missing_secret_tokens_are_refused(gateway: Gateway) -> None:
    inbound = await gateway.reader(Topic.INTERACTIONS_INBOUND)
    update = Update(
        update_id=_update_id(),
        message=Message(message_id=1, date=SENT, chat=PRIVATE, from_user=ANN, text="x"),
    )
    async with aiohttp.ClientSession() as http:
        wrong = await _post(http, gateway, update, token="not-the-secret-token")
        assert wrong.status == 403
        body = await wrong.json()
        assert body["error"] == "bad_signature" and _token(gateway) not in body["reason"]
        prefix = await _post(http, gateway, update, token=_token(gateway)[:-1])
        assert prefix.status == 403
        missing = await _post(http, gateway, update, token="")
        assert missing.status == 401
        assert (await missing.json())["error"] == "missing_signature"
    assert await inbound.settle(1.0) == []


async def test_malformed_json_and_wrong_content_type(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        broken = await _post(http, gateway, b'{"update_id": 1, "message": {')
        assert broken.status == 400
        assert (await broken.json())["error"] == "malformed"
        no_id = await _post(http, gateway, b'{"message": {"message_id": 1}}')
        assert no_id.status == 400
        form = await _post(http, gateway, b"update_id=1", content_type="application/x-www-form-urlencoded")
        assert form.status == 415


async def test_update_ids_are_per_bot(
    kafka_bootstrap: str, make_database: MakeDatabase, topic_prefix: str
) -> None:
    """Two bots sharing one dedup store may both send update 1: neither hides the other."""
    message = Message(message_id=1, date=SENT, chat=PRIVATE, from_user=ANN, text="hi")
    update = Update(update_id=1, message=message)
    ids: list[str] = []
    db = await make_database()
    for bot in ("1111111", "2222222"):
        env = {"TELEGRAM_BOT_TOKEN": f"{bot}:AAH-not-a-real-token"}
        async with running_gateway(kafka_bootstrap, db, topic_prefix, **env) as gw:
            inbound = await gw.reader(Topic.INTERACTIONS_INBOUND)
            async with aiohttp.ClientSession() as http:
                assert (await _post(http, gw, update)).status == 200
            events = await inbound.wait_for(len(ids) + 1)
            ids.append(events[-1]["payload"]["vendor_message_id"])
            assert events[-1]["payload"]["recipient"]["value"] == bot
    assert ids == ["1111111:msg:7310000042:1", "2222222:msg:7310000042:1"]
