"""Email as the mail vendors hand it over: raw MIME, header blocks, and multipart/form-data bodies.

Pure functions over bytes. The stdlib parser is lenient (it records defects instead of raising), but
its structured-header code has known crashes on hostile input; every header is therefore read through
``_header`` and an unreadable one counts as absent rather than failing the whole mail. Attachments are
described, never carried: their bytes stay out of Kafka (``email-attachment:<message-id>/<index>``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser

from pydantic import ValidationError

from omnirouter_gateway.inbound.base import InboundEvent, Malformed
from omnirouter_gateway.inbound.util import clip
from omnirouter_shared.contracts.common import Address, AddressKind, Attachment, Channel, ThreadRef, Vendor
from omnirouter_shared.contracts.interactions import InteractionReceived, interaction_id_for

_PARSER = BytesParser(policy=policy.default)
_MSG_ID = re.compile(r"<[^<>\s]+>")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")
_MAX_ATTACHMENTS = 100
_MAX_ID = 500


@dataclass(frozen=True)
class FormPart:
    """One field of a multipart/form-data body."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    def text(self, charset: str = "utf-8") -> str:
        try:
            return self.data.decode(charset, errors="replace")
        except LookupError:
            return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class ParsedEmail:
    sender: Address
    recipient: Address | None
    subject: str | None
    message_id: str | None
    thread: ThreadRef
    text: str | None
    attachments: tuple[Attachment, ...]
    sent_at: datetime | None = None


# -- multipart/form-data ------------------------------------------------------------------------------
def form_data(body: bytes, content_type_header: str) -> list[FormPart]:
    """Split a multipart/form-data body (CRLF or bare LF, as SendGrid's own samples use)."""
    if "boundary=" not in content_type_header.lower():
        raise Malformed("multipart body without a boundary")
    header = "Content-Type: " + content_type_header.replace("\r", " ").replace("\n", " ")
    try:
        message = _PARSER.parsebytes(header.encode("utf-8", "replace") + b"\r\n\r\n" + body)
        if not message.is_multipart():
            raise Malformed("multipart body has no parts")
        parts = []
        for part in message.iter_parts():
            name = _param(part, "name")
            if name is None:
                continue
            parts.append(
                FormPart(
                    name=name,
                    data=_part_bytes(part),
                    filename=_param(part, "filename"),
                    content_type=part.get_content_type() if part.get("Content-Type") else None,
                )
            )
    except Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - the stdlib parser's crash bugs: refuse, never 500
        raise Malformed(f"multipart body cannot be parsed ({type(exc).__name__})") from exc
    return parts


def _param(part: Message, name: str) -> str | None:
    try:
        value = part.get_param(name, header="content-disposition")
    except Exception:  # noqa: BLE001 - see the module docstring
        return None
    if isinstance(value, tuple):  # RFC 2231 (charset, language, value)
        return str(value[2])
    return str(value) if value is not None else None


def _part_bytes(part: Message) -> bytes:
    if part.is_multipart():
        # A nested message (message/rfc822 attachment): its bytes as sent.
        return part.as_bytes(policy=policy.compat32)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


# -- headers and bodies ----------------------------------------------------------------------------
def parse_mime(raw: bytes) -> EmailMessage:
    try:
        message = _PARSER.parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        raise Malformed(f"email cannot be parsed ({type(exc).__name__})") from exc
    assert isinstance(message, EmailMessage)
    return message


def parse_header_block(block: str) -> EmailMessage:
    """SendGrid's ``headers`` field: the mail's header lines without a body."""
    return parse_mime(block.encode("utf-8", "surrogateescape").rstrip(b"\r\n") + b"\n\n")


def _header(message: Message, name: str) -> object | None:
    try:
        return message.get(name)
    except Exception:  # noqa: BLE001 - see the module docstring
        return None


def clean(text: str) -> str:
    """Undecodable header bytes come back as lone surrogates: make them U+FFFD, never a crash later."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "")


def header_text(message: Message, name: str) -> str | None:
    value = _header(message, name)
    if value is None:
        return None
    try:
        text = clean(str(value)).strip()
    except Exception:  # noqa: BLE001 - see the module docstring
        return None
    return text or None


def first_address(message: Message, name: str) -> HeaderAddress | None:
    value = _header(message, name)
    addresses = getattr(value, "addresses", None)
    try:
        for address in addresses or ():
            if isinstance(address, HeaderAddress) and address.addr_spec and "@" in address.addr_spec:
                return address
    except Exception:  # noqa: BLE001 - see the module docstring
        return None
    return None


def message_ids(value: str | None) -> tuple[str, ...]:
    """``<a@b> <c@d>`` (References) -> each id, angle brackets kept as in the header."""
    if not value:
        return ()
    found = tuple(m for m in _MSG_ID.findall(value) if len(m) <= _MAX_ID)
    if found:
        return found
    bare = value.strip()
    return (f"<{bare}>",) if bare and " " not in bare and len(bare) <= _MAX_ID else ()


def email_address(address: HeaderAddress, *, verified: bool = True) -> Address:
    value = address.addr_spec.strip()
    if not value or len(value) > 512 or clean(value) != value:
        raise Malformed("email address is empty, too long or not valid UTF-8")
    display = clean(address.display_name).strip()[:200] if address.display_name else None
    return Address(kind=AddressKind.EMAIL, value=value, display_name=display or None, verified=verified)


def parse_address_text(text: str | None) -> Address | None:
    """A ``From``/``To`` value given as plain text (SendGrid's ``from`` field, Mailgun's ``sender``)."""
    if not text:
        return None
    holder = parse_header_block("To: " + text.replace("\r", " ").replace("\n", " "))
    address = first_address(holder, "To")
    return email_address(address) if address is not None else None


def html_to_text(html: str) -> str:
    stripper = _TextOnly()
    try:
        stripper.feed(html)
        stripper.close()
    except Exception:  # noqa: BLE001 - HTMLParser on hostile markup: keep what was read
        pass
    return tidy(stripper.text())


def tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class _TextOnly(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "title"})
    _BREAK = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._out: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAK:
            self._out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAK:
            self._out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._out.append(data)

    def text(self) -> str:
        return "".join(self._out)


def _content(part: Message) -> str | None:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - unknown charset or broken transfer encoding: decode leniently
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else None
    return content if isinstance(content, str) else None


def body_text(message: EmailMessage) -> str | None:
    """text/plain if the mail has one, else its HTML reduced to text."""
    try:
        plain = message.get_body(preferencelist=("plain",))
        html = None if plain is not None else message.get_body(preferencelist=("html",))
    except Exception:  # noqa: BLE001 - see the module docstring
        return None
    if plain is not None:
        text = _content(plain)
        return tidy(text) if text is not None else None
    if html is not None:
        markup = _content(html)
        return html_to_text(markup) if markup is not None else None
    return None


def _attachment_parts(message: EmailMessage) -> Iterator[Message]:
    try:
        bodies = {
            id(message.get_body(preferencelist=("plain",))),
            id(message.get_body(preferencelist=("html",))),
        }
        for part in message.walk():
            if part is message or part.is_multipart() or id(part) in bodies:
                continue
            disposition = part.get_content_disposition()
            if disposition == "attachment" or part.get_filename() or part.get_content_maintype() != "text":
                yield part
    except Exception:  # noqa: BLE001 - see the module docstring
        return


def attachment_ref(
    message_id: str, index: int, filename: str | None, content_type: str | None, size: int
) -> Attachment:
    bare = message_id.strip("<>")
    return Attachment(
        url=f"email-attachment:{bare}/{index}",
        content_type=content_type,
        filename=filename[:255] if filename else None,
        size=size,
    )


def attachments(message: EmailMessage, message_id: str) -> tuple[Attachment, ...]:
    found = []
    for index, part in enumerate(_attachment_parts(message)):
        if index >= _MAX_ATTACHMENTS:
            break
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001 - see the module docstring
            filename = None
        found.append(
            attachment_ref(message_id, index, filename, part.get_content_type(), len(_part_bytes(part)))
        )
    return tuple(found)


def fallback_id(body: bytes) -> str:
    """For a mail without a Message-ID: the same bytes redelivered get the same id."""
    return f"<sha256-{hashlib.sha256(body).hexdigest()}@omnirouter.invalid>"


def sent_at(message: Message) -> datetime | None:
    value = _header(message, "Date")
    when = getattr(value, "datetime", None)
    if not isinstance(when, datetime):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def thread_of(message: Message, message_id: str) -> ThreadRef:
    in_reply_to = message_ids(header_text(message, "In-Reply-To"))
    return ThreadRef(
        message_id=message_id,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=message_ids(header_text(message, "References"))[:100],
    )


def parse_email(raw: bytes) -> ParsedEmail:
    """A complete MIME message, as SendGrid's raw mode and Mailgun's ``body-mime`` carry it."""
    message = parse_mime(raw)
    found = first_address(message, "From")
    if found is None:
        raise Malformed("email without a usable From address")
    ids = message_ids(header_text(message, "Message-ID"))
    message_id = ids[0] if ids else fallback_id(raw)
    to = first_address(message, "To")
    subject = header_text(message, "Subject")
    return ParsedEmail(
        sender=email_address(found),
        recipient=email_address(to) if to is not None else None,
        subject=subject[:1000] if subject else None,
        message_id=message_id,
        thread=thread_of(message, message_id),
        text=body_text(message),
        attachments=attachments(message, message_id),
        sent_at=sent_at(message),
    )


def email_event(
    vendor: Vendor,
    mail: ParsedEmail,
    received_at: datetime,
    vendor_fields: dict[str, str],
    recipient: Address | None = None,
) -> InboundEvent:
    """One inbound email as the canonical event; the dedup key is its Message-ID."""
    to = mail.recipient or recipient
    if to is None:
        raise Malformed("email without a recipient (To or envelope)")
    message_id = mail.message_id or mail.thread.message_id
    if not message_id:
        raise Malformed("email without an id")
    try:
        payload = _received(vendor, mail, message_id, to, received_at, vendor_fields)
    except ValidationError as exc:
        raise Malformed(f"email cannot be represented: {exc.errors()[0]['msg']}") from exc
    return InboundEvent(
        dedup_key=f"msg:{message_id}",
        event_id=payload.interaction_id,
        kafka_key=mail.sender.key,
        payload=payload,
    )


def _received(
    vendor: Vendor,
    mail: ParsedEmail,
    message_id: str,
    to: Address,
    received_at: datetime,
    vendor_fields: dict[str, str],
) -> InteractionReceived:
    return InteractionReceived(
        interaction_id=interaction_id_for(vendor, message_id),
        channel=Channel.EMAIL,
        vendor=vendor,
        vendor_message_id=message_id,
        sender=mail.sender,
        recipient=to,
        subject=mail.subject,
        text=clip(mail.text),
        attachments=mail.attachments,
        sent_at=mail.sent_at,
        received_at=received_at,
        thread=mail.thread,
        vendor_fields={k: clean(v) for k, v in vendor_fields.items()},
    )


def small_fields(pairs: list[tuple[str, str]], skip: frozenset[str], limit: int = 4000) -> dict[str, str]:
    """The vendor's other fields, kept for audit; bodies and anything large stay out of Kafka."""
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in skip or name in out or len(value) > limit or len(out) >= 100:
            continue
        out[name] = value
    return out
