"""Value types used by several events: channels, vendors, addresses, attachments."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Channel(StrEnum):
    SMS = "sms"
    MMS = "mms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    EMAIL = "email"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"


#: Channels where the customer waits on the line; they take priority over asynchronous work.
LIVE_CHANNELS = frozenset({Channel.VOICE, Channel.WEBCHAT})


class Vendor(StrEnum):
    TWILIO = "twilio"
    META = "meta"
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    VONAGE = "vonage"
    TELEGRAM = "telegram"
    WEBCHAT = "webchat"
    INTERNAL = "internal"


class AddressKind(StrEnum):
    """The kind of identifier an address is; identity-resolution normalises each kind its own way."""

    PHONE = "phone"  # E.164 after normalisation
    WHATSAPP = "whatsapp"  # WhatsApp id: digits, no "+"
    EMAIL = "email"
    MESSENGER = "messenger"  # page-scoped id, namespace = page id
    INSTAGRAM = "instagram"  # page-scoped id, namespace = account id
    TELEGRAM = "telegram"  # Telegram user id
    WEBCHAT = "webchat"  # web-chat visitor id
    CRM = "crm"  # an id in the business's CRM: strong evidence
    LOGIN = "login"  # an authenticated login: strong evidence


class Model(BaseModel):
    """Base for contract models: immutable, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore", use_enum_values=False)


class Address(Model):
    kind: AddressKind
    value: str = Field(min_length=1, max_length=512)
    #: Page / account / bot the id is scoped to (Messenger, Instagram, Telegram bots).
    namespace: str | None = None
    display_name: str | None = None
    #: True when the channel itself proved the customer controls this address (the vendor delivered
    #: from it); False when the customer only typed it.
    verified: bool = True

    @property
    def key(self) -> str:
        """Stable text form, used as a Kafka key and in logs (never contains secrets)."""
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind.value}:{ns}{self.value}"


class Attachment(Model):
    """A reference to media kept at the vendor or in object storage; bytes never travel on Kafka."""

    url: str
    content_type: str | None = None
    filename: str | None = None
    size: int | None = None


class ThreadRef(Model):
    """How the vendor threads messages: email headers, or a vendor conversation id."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    vendor_conversation_id: str | None = None
