"""Twilio Messaging (SMS, MMS, WhatsApp via Twilio) and Twilio Voice webhooks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime
from xml.sax.saxutils import escape

from aiohttp import web
from pydantic import ValidationError

from omnirouter_gateway.inbound import twilio_signature
from omnirouter_gateway.inbound.base import (
    InboundEvent,
    Malformed,
    NotConfigured,
    Parsed,
    RawRequest,
)
from omnirouter_gateway.inbound.util import clip, require, status_event_id
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, Vendor
from omnirouter_shared.contracts.interactions import (
    InteractionKind,
    InteractionReceived,
    InteractionStatus,
    InteractionStatusChanged,
    interaction_id_for,
)

FORM = frozenset({"application/x-www-form-urlencoded"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

#: Twilio's outbound message states (status callbacks of messages we sent).
_MESSAGE_STATUS = {
    "queued": InteractionStatus.QUEUED,
    "accepted": InteractionStatus.QUEUED,
    "scheduled": InteractionStatus.QUEUED,
    "sending": InteractionStatus.QUEUED,
    "sent": InteractionStatus.SENT,
    "delivered": InteractionStatus.DELIVERED,
    "read": InteractionStatus.READ,
    "failed": InteractionStatus.FAILED,
    "undelivered": InteractionStatus.FAILED,
    "canceled": InteractionStatus.FAILED,
}

_CALL_STATUS = {
    "queued": InteractionStatus.RINGING,
    "initiated": InteractionStatus.RINGING,
    "ringing": InteractionStatus.RINGING,
    "in-progress": InteractionStatus.ANSWERED,
    "completed": InteractionStatus.COMPLETED,
    "busy": InteractionStatus.ABANDONED,
    "failed": InteractionStatus.ABANDONED,
    "no-answer": InteractionStatus.ABANDONED,
    "canceled": InteractionStatus.ABANDONED,
}


def twiml(body: str = "") -> web.Response:
    text = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>' if body else EMPTY_TWIML
    return web.Response(text=text, content_type="text/xml")


def parse_address(raw: str) -> tuple[Channel, Address]:
    """``whatsapp:+14155550100`` is a WhatsApp id; anything else Twilio sends is a phone number
    (or a short code / alphanumeric sender, which identity-resolution refuses as a customer id)."""
    value = raw.strip()
    if value.lower().startswith("whatsapp:"):
        digits = value.split(":", 1)[1].strip().lstrip("+")
        if not digits:
            raise Malformed("empty WhatsApp address")
        return Channel.WHATSAPP, Address(kind=AddressKind.WHATSAPP, value=digits)
    if value.lower().startswith(("messenger:", "rcs:")):
        raise Malformed(f"Twilio channel {value.split(':', 1)[0]!r} is not supported")
    return Channel.SMS, Address(kind=AddressKind.PHONE, value=value)


class _TwilioBase(ABC):
    vendor = Vendor.TWILIO
    content_types = FORM

    def __init__(self, auth_token: str | None, account_sid: str | None, max_body: int) -> None:
        self._token = auth_token
        self._account_sid = account_sid
        self.max_body = max_body

    def configured(self) -> bool:
        return bool(self._token)

    def verify(self, request: RawRequest, now: float) -> None:
        if not self._token:
            raise NotConfigured("TWILIO_AUTH_TOKEN is not set")
        # The auth token is the account's: a valid signature already proves the account.
        twilio_signature.verify(self._token, request)

    def parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        try:
            return self._parse(request, received_at)
        except ValidationError as exc:
            # Signed, but a value does not fit the canonical event (an id or address over its limit).
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:3])
            raise Malformed(f"Twilio request has unusable values ({fields})") from exc

    @abstractmethod
    def _parse(self, request: RawRequest, received_at: datetime) -> Parsed: ...


class TwilioMessaging(_TwilioBase):
    name = "twilio_messaging"

    def _parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        form = request.form()
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        if not sid:
            raise Malformed("Twilio webhook without MessageSid")
        status = (form.get("MessageStatus") or "").lower()
        if status in _MESSAGE_STATUS:
            return Parsed(events=[self._receipt(form, sid, status, received_at)], answer=twiml())
        sender_raw = require(form, "From", "Twilio")
        recipient_raw = require(form, "To", "Twilio")
        channel, sender = parse_address(sender_raw)
        _, recipient = parse_address(recipient_raw)
        if form.get("ProfileName"):
            sender = sender.model_copy(update={"display_name": clip(form["ProfileName"], 200)})
        attachments = []
        try:
            media = max(0, min(int(form.get("NumMedia") or 0), 20))
        except ValueError as exc:
            raise Malformed("NumMedia is not a number") from exc
        for i in range(media):
            url = form.get(f"MediaUrl{i}")
            if url:
                attachments.append(Attachment(url=url, content_type=form.get(f"MediaContentType{i}")))
        if attachments and channel is Channel.SMS:
            channel = Channel.MMS
        payload = InteractionReceived(
            interaction_id=interaction_id_for(Vendor.TWILIO, sid),
            channel=channel,
            vendor=Vendor.TWILIO,
            vendor_message_id=sid,
            sender=sender,
            recipient=recipient,
            text=clip(form.get("Body")),
            attachments=tuple(attachments),
            received_at=received_at,
            vendor_fields=dict(form),
        )
        event = InboundEvent(
            dedup_key=f"msg:{sid}", event_id=payload.interaction_id, kafka_key=sender.key, payload=payload
        )
        return Parsed(events=[event], answer=twiml())

    def _receipt(self, form: dict[str, str], sid: str, status: str, received_at: datetime) -> InboundEvent:
        # A receipt for a message we sent: the customer is the recipient.
        channel, customer = parse_address(require(form, "To", "Twilio"))
        dedup = f"status:{sid}:{status}"
        payload = InteractionStatusChanged(
            interaction_id=interaction_id_for(Vendor.TWILIO, sid),
            direction="outbound",
            channel=channel,
            vendor=Vendor.TWILIO,
            vendor_message_id=sid,
            customer_address=customer,
            status=_MESSAGE_STATUS[status],
            occurred_at=received_at,
            error=form.get("ErrorCode") or None,
            vendor_fields=dict(form),
        )
        return InboundEvent(
            dedup_key=dedup,
            event_id=status_event_id("twilio", dedup),
            kafka_key=customer.key,
            payload=payload,
        )

    def success(self, parsed: Parsed) -> web.Response:
        return parsed.answer or twiml()


class TwilioVoice(_TwilioBase):
    """An incoming call: the caller hears a greeting and waits in a TwiML queue until an agent's
    softphone dials it (``<Dial><Queue>``); the call is one interaction of kind ``call``."""

    name = "twilio_voice"

    def __init__(
        self, auth_token: str | None, account_sid: str | None, max_body: int, queue: str, greeting: str
    ) -> None:
        super().__init__(auth_token, account_sid, max_body)
        self._queue = queue
        self._greeting = greeting

    def _parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        form = request.form()
        sid = require(form, "CallSid", "Twilio Voice")
        _, caller = parse_address(require(form, "From", "Twilio Voice"))
        _, called = parse_address(require(form, "To", "Twilio Voice"))
        if form.get("CallerName"):
            caller = caller.model_copy(update={"display_name": clip(form["CallerName"], 200)})
        payload = InteractionReceived(
            interaction_id=interaction_id_for(Vendor.TWILIO, sid),
            kind=InteractionKind.CALL,
            channel=Channel.VOICE,
            vendor=Vendor.TWILIO,
            vendor_message_id=sid,
            sender=caller,
            recipient=called,
            received_at=received_at,
            vendor_fields=dict(form),
        )
        event = InboundEvent(
            dedup_key=f"call:{sid}", event_id=payload.interaction_id, kafka_key=caller.key, payload=payload
        )
        return Parsed(events=[event])

    def success(self, parsed: Parsed) -> web.Response:
        say = f"<Say>{escape(self._greeting)}</Say>" if self._greeting else ""
        return twiml(f"{say}<Enqueue>{escape(self._queue)}</Enqueue>")


class TwilioVoiceStatus(_TwilioBase):
    """Call status callbacks: answered, completed, or abandoned (busy, no answer, hung up)."""

    name = "twilio_voice_status"

    def _parse(self, request: RawRequest, received_at: datetime) -> Parsed:
        form = request.form()
        sid = require(form, "CallSid", "Twilio Voice status")
        raw_status = require(form, "CallStatus", "Twilio Voice status").lower()
        status = _CALL_STATUS.get(raw_status)
        if status is None:
            raise Malformed(f"unknown CallStatus {raw_status[:40]!r}")
        _, caller = parse_address(require(form, "From", "Twilio Voice status"))
        # SequenceNumber orders callbacks of one call; without it the status itself is the step.
        step = form.get("SequenceNumber") or raw_status
        dedup = f"callstatus:{sid}:{step}"
        payload = InteractionStatusChanged(
            interaction_id=interaction_id_for(Vendor.TWILIO, sid),
            channel=Channel.VOICE,
            vendor=Vendor.TWILIO,
            vendor_message_id=sid,
            customer_address=caller,
            status=status,
            occurred_at=received_at,
            vendor_fields=dict(form),
        )
        event = InboundEvent(
            dedup_key=dedup, event_id=status_event_id("twilio", dedup), kafka_key=caller.key, payload=payload
        )
        return Parsed(events=[event])

    def success(self, parsed: Parsed) -> web.Response:
        return web.Response(status=200, text="", content_type="text/plain")
