"""Telegram Bot API updates (``setWebhook`` with a ``secret_token``).

Telegram numbers updates per bot, so the dedup key carries the bot's id with the ``update_id``, and
the message's own identity (chat, message id, edit date): a redelivery has all three unchanged, while
the random restart of ``update_id`` after a silent week cannot make a new message look like an old
one."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from omnirouter_gateway.inbound.base import (
    BadSignature,
    InboundEvent,
    Malformed,
    MissingSignature,
    NotConfigured,
    Parsed,
    RawRequest,
)
from omnirouter_gateway.inbound.meta import JSON, ident, json_object, obj, objs, text
from omnirouter_gateway.inbound.util import clip, from_epoch
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, ThreadRef, Vendor
from omnirouter_shared.contracts.interactions import InteractionReceived, interaction_id_for

HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: Update kinds that carry a message from a person (or a channel) to the bot.
_MESSAGES = ("message", "edited_message", "channel_post", "edited_channel_post", "business_message")
#: Message fields that are file references: (field, default MIME type).
_FILES = (
    ("document", None),
    ("audio", None),
    ("voice", "audio/ogg"),
    ("video", None),
    ("video_note", "video/mp4"),
    ("animation", None),
    ("sticker", None),
)
#: Chat events Telegram sends as messages; without text they are not contacts.
_SERVICE = frozenset(
    {
        "new_chat_members",
        "left_chat_member",
        "new_chat_title",
        "new_chat_photo",
        "delete_chat_photo",
        "group_chat_created",
        "supergroup_chat_created",
        "channel_chat_created",
        "message_auto_delete_timer_changed",
        "migrate_to_chat_id",
        "migrate_from_chat_id",
        "pinned_message",
        "forum_topic_created",
        "forum_topic_edited",
        "forum_topic_closed",
        "forum_topic_reopened",
        "video_chat_scheduled",
        "video_chat_started",
        "video_chat_ended",
        "video_chat_participants_invited",
        "write_access_allowed",
        "boost_added",
        "chat_background_set",
    }
)


def bot_id(bot_token: str | None) -> str:
    """The numeric prefix of ``<bot id>:<secret>``; the token's secret part is never used."""
    prefix = (bot_token or "").partition(":")[0].strip()
    return prefix if prefix.isascii() and prefix.isdigit() else "bot"


def _name(user: dict[str, Any]) -> str | None:
    parts = [p for p in (text(user.get("first_name")), text(user.get("last_name"))) if p]
    username = text(user.get("username"))
    return clip(" ".join(parts) or (f"@{username}" if username else None) or text(user.get("title")), 200)


def _file(kind: str, item: dict[str, Any], default_mime: str | None) -> Attachment | None:
    file_id = ident(item.get("file_id"))
    if file_id is None:
        return None
    mime = item.get("mime_type")
    name = item.get("file_name")
    return Attachment(
        # Fetched with getFile (and the bot token) when someone needs the bytes.
        url=f"telegram-file:{file_id}",
        content_type=mime if isinstance(mime, str) else default_mime,
        filename=name if isinstance(name, str) else None,
        size=item["file_size"] if isinstance(item.get("file_size"), int) else None,
    )


def _content(message: dict[str, Any]) -> tuple[str | None, list[Attachment]]:
    attachments: list[Attachment] = []
    photos = list(objs(message.get("photo")))
    if photos:
        # Telegram sends every size of one photo; the last is the largest.
        photo = _file("photo", photos[-1], "image/jpeg")
        if photo is not None:
            attachments.append(photo)
    for kind, mime in _FILES:
        item = message.get(kind)
        if isinstance(item, dict):
            attachment = _file(kind, item, mime)
            if attachment is not None:
                attachments.append(attachment)
    parts = [p for p in (text(message.get("text")), text(message.get("caption"))) if p]
    location = obj(message.get("location"))
    lat, lng = location.get("latitude"), location.get("longitude")
    if _is_number(lat) and _is_number(lng):
        attachments.append(Attachment(url=f"geo:{lat},{lng}"))
        parts.append(f"({lat}, {lng})")
    contact = obj(message.get("contact"))
    if contact:
        phone = text(contact.get("phone_number"))
        parts.append(" ".join(p for p in (_name(contact), phone) if p))
    return clip("\n".join(p for p in parts if p)) or None, attachments


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class Telegram:
    vendor = Vendor.TELEGRAM
    name = "telegram"
    content_types = JSON

    def __init__(self, secret_token: str | None, bot_token: str | None, max_body: int) -> None:
        self._secret = secret_token
        self._bot = bot_id(bot_token)
        self.max_body = max_body

    def configured(self) -> bool:
        return bool(self._secret)

    def verify(self, request: RawRequest, now: float) -> None:
        if not self._secret:
            raise NotConfigured("TELEGRAM_SECRET_TOKEN is not set")
        given = request.headers.get(HEADER)
        if not given:
            raise MissingSignature(f"{HEADER} header is missing")
        if not hmac.compare_digest(self._secret.encode(), given.encode("utf-8", "surrogatepass")):
            raise BadSignature(f"{HEADER} does not match")

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        update = json_object(request.body)
        update_id = update.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            raise Malformed("Telegram update without an integer update_id")
        event: InboundEvent | None = None
        for kind in _MESSAGES:
            if isinstance(update.get(kind), dict):
                event = self._message(update_id, kind, update[kind], update, received_at)
                break
        else:
            if isinstance(update.get("callback_query"), dict):
                event = self._callback(update_id, update["callback_query"], update, received_at)
        # Inline queries, polls, member changes, reactions...: not contacts, but acknowledged.
        return Parsed(events=[event]) if event is not None else Parsed(ignored=1)

    def success(self, parsed: Parsed) -> web.Response:
        # An empty answer: a JSON body with "method" would be executed by Telegram as a Bot API call.
        return web.Response(status=200, text="", content_type="text/plain")

    def _message(
        self,
        update_id: int,
        kind: str,
        message: dict[str, Any],
        update: dict[str, Any],
        received_at: datetime,
    ) -> InboundEvent | None:
        chat = obj(message.get("chat"))
        chat_id = ident(chat.get("id"))
        message_id = ident(message.get("message_id"))
        # Channel posts and anonymous group admins have no user: the chat speaks for itself.
        person = obj(message.get("from")) or obj(message.get("sender_chat")) or chat
        body, attachments = _content(message)
        if chat_id is None or message_id is None:
            return None
        # Truthiness, not presence: clients serialise the flags as false on ordinary messages.
        if body is None and not attachments and any(message.get(key) for key in _SERVICE):
            return None
        if kind.startswith("edited_"):
            edit = ident(message.get("edit_date")) or "0"
            identity = f"edit:{chat_id}:{message_id}:{edit}"
        else:
            identity = f"msg:{chat_id}:{message_id}"
        reply_to = ident(obj(message.get("reply_to_message")).get("message_id"))
        return self._event(
            update_id, identity, person, chat_id, body, attachments, reply_to, update, message, received_at
        )

    def _callback(
        self, update_id: int, query: dict[str, Any], update: dict[str, Any], received_at: datetime
    ) -> InboundEvent | None:
        query_id = ident(query.get("id"))
        message = obj(query.get("message"))
        chat_id = ident(obj(message.get("chat")).get("id"))
        if query_id is None:
            return None
        # A button pressed under an inline-mode message has no chat; replies then go to the user.
        person = obj(query.get("from"))
        body = text(query.get("data")) or text(query.get("game_short_name"))
        reply_to = ident(message.get("message_id"))
        return self._event(
            update_id,
            f"callback:{query_id}",
            person,
            chat_id or ident(person.get("id")),
            body,
            [],
            reply_to,
            update,
            query,
            received_at,
        )

    def _event(
        self,
        update_id: int,
        identity: str,
        person: dict[str, Any],
        chat_id: str | None,
        body: str | None,
        attachments: list[Attachment],
        reply_to: str | None,
        update: dict[str, Any],
        message: dict[str, Any],
        received_at: datetime,
    ) -> InboundEvent | None:
        user_id = ident(person.get("id"))
        if user_id is None or chat_id is None:
            return None
        vendor_id = f"{self._bot}:{identity}"
        try:
            sender = Address(kind=AddressKind.TELEGRAM, value=user_id, display_name=_name(person))
            payload = InteractionReceived(
                interaction_id=interaction_id_for(Vendor.TELEGRAM, vendor_id),
                channel=Channel.TELEGRAM,
                vendor=Vendor.TELEGRAM,
                vendor_message_id=vendor_id,
                sender=sender,
                recipient=Address(kind=AddressKind.TELEGRAM, value=self._bot),
                text=body,
                attachments=tuple(attachments),
                sent_at=from_epoch(message.get("date")),
                received_at=received_at,
                thread=ThreadRef(in_reply_to=reply_to, vendor_conversation_id=chat_id),
                # Replies go to the chat, which is not always the user (groups, channels).
                vendor_fields={**update, "chat_id": chat_id, "bot_id": self._bot},
            )
        except ValidationError:
            return None
        return InboundEvent(
            dedup_key=f"{self._bot}:{update_id}:{identity}",
            event_id=payload.interaction_id,
            kafka_key=sender.key,
            payload=payload,
        )
