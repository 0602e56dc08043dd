"""What the two email senders share: the From identity, the subject and the threading headers."""

from __future__ import annotations

from dataclasses import dataclass

from omnirouter_gateway.outbound.base import PermanentFailure
from omnirouter_shared.contracts.common import AddressKind
from omnirouter_shared.contracts.replies import ReplyRequested

#: Providers refuse a message without a subject; a reply that has none still needs one.
DEFAULT_SUBJECT = "Re: your message"


@dataclass(frozen=True)
class Mailbox:
    email: str
    name: str | None

    def header(self) -> str:
        return f'"{self.name}" <{self.email}>' if self.name else self.email


def sender(
    reply: ReplyRequested, email_from: str | None, email_from_name: str | None, vendor: str
) -> Mailbox:
    if reply.from_ is not None and reply.from_.kind is AddressKind.EMAIL:
        return Mailbox(reply.from_.value, reply.from_.display_name or email_from_name)
    if not email_from:
        raise PermanentFailure(f"{vendor}: the reply has no sender and EMAIL_FROM is not set")
    return Mailbox(email_from, email_from_name)


def threading_headers(reply: ReplyRequested) -> dict[str, str]:
    """In-Reply-To and References keep the answer in the customer's thread in every mail client."""
    if not reply.in_reply_to:
        return {}
    ref = reply.in_reply_to.strip()
    if not ref.startswith("<"):
        ref = f"<{ref}>"
    return {"In-Reply-To": ref, "References": ref}


def subject(reply: ReplyRequested) -> str:
    return reply.subject or DEFAULT_SUBJECT
