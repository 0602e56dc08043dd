"""Turning an address as a channel delivered it into identifier claims, or a reason to ignore it."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers

from omnirouter_identity.core.decisions import Dropped, DropReason
from omnirouter_identity.core.identifiers import NAMESPACED_KINDS, STRONG_KINDS, Claim, IdentifierKey, Tier
from omnirouter_shared.contracts.common import Address, AddressKind


class Unusable(ValueError):
    """The value cannot be an identifier (junk, withheld, the business's own address, unparseable)."""


_JUNK_VALUES = frozenset(
    {
        "",
        "-1",
        "null",
        "none",
        "nil",
        "undefined",
        "unknown",
        "anonymous",
        "restricted",
        "private",
        "withheld",
        "unavailable",
        "blocked",
        "test",
        "n/a",
        "na",
        "0",
        "266696687",  # "ANONYMOUS" on a keypad: what some carriers send for withheld caller ids
        "7378742833",  # "RESTRICTED"
        "86282452253",  # "UNAVAILABLE"
    }
)
_ZEROS = re.compile(r"^[0\-+ ]*$")
_JUNK_EMAIL_LOCAL = frozenset(
    {"test", "noreply", "no-reply", "donotreply", "do-not-reply", "mailer-daemon", "postmaster", "null"}
)
_JUNK_EMAIL_DOMAINS = frozenset(
    {"test.com", "example.com", "example.org", "example.net", "invalid", "localhost"}
)
_GMAIL = frozenset({"gmail.com", "googlemail.com"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class NormalisationPolicy:
    default_region: str = "US"
    #: The business's own numbers and addresses, already normalised (see :func:`business_keys`).
    business_keys: frozenset[IdentifierKey] = frozenset()


def business_keys(values: Iterable[str], default_region: str) -> frozenset[IdentifierKey]:
    """Normalise the configured business addresses: e-mail if it has an "@", else a phone number."""
    policy = NormalisationPolicy(default_region=default_region)
    keys: set[IdentifierKey] = set()
    for raw in values:
        raw = raw.strip()
        if not raw:
            continue
        kind = AddressKind.EMAIL if "@" in raw else AddressKind.PHONE
        try:
            for claim in normalise(Address(kind=kind, value=raw), policy, check_junk=False):
                keys.add(claim.key)
        except Unusable as exc:
            raise ValueError(f"business address {raw!r} is not a phone number or e-mail: {exc}") from exc
    return frozenset(keys)


def normalise(address: Address, policy: NormalisationPolicy, *, check_junk: bool = True) -> tuple[Claim, ...]:
    """The claims an address makes. A WhatsApp id also claims its phone number: it is the same line.

    Raises :class:`Unusable` for values that must never become keys.
    """
    raw = unicodedata.normalize("NFKC", address.value).strip()
    if check_junk and raw.casefold() in _JUNK_VALUES:
        raise Unusable("placeholder value")
    tier = _tier(address)
    kind = address.kind
    claims: tuple[Claim, ...]
    if kind is AddressKind.PHONE:
        claims = (_phone_claim(raw, policy.default_region, tier),)
    elif kind is AddressKind.WHATSAPP:
        digits = re.sub(r"\D", "", raw)
        if not digits:
            raise Unusable("WhatsApp id without digits")
        phone = _phone_claim("+" + digits, policy.default_region, tier)
        claims = (Claim(IdentifierKey(kind, "", digits), tier, phone.variant_key), phone)
    elif kind is AddressKind.EMAIL:
        claims = (_email_claim(raw, tier, check_junk),)
    elif kind in NAMESPACED_KINDS:
        namespace = (address.namespace or "").strip()
        if not namespace:
            raise Unusable(f"{kind.value} ids are page-scoped and need the page id as namespace")
        claims = (Claim(IdentifierKey(kind, namespace, _opaque(raw)), tier),)
    else:
        # Telegram user ids are global across bots; web-chat visitors, CRM ids and logins are opaque
        # strings whose case may matter to the system that issued them.
        claims = (Claim(IdentifierKey(kind, "", _opaque(raw)), tier),)
    if check_junk:
        for claim in claims:
            if claim.key in policy.business_keys:
                raise Unusable("the business's own address")
    return claims


def _tier(address: Address) -> Tier:
    if not address.verified:
        return Tier.TYPED
    return Tier.STRONG if address.kind in STRONG_KINDS else Tier.VERIFIED


def _opaque(raw: str) -> str:
    if not raw or any(ch.isspace() for ch in raw):
        raise Unusable("empty or contains whitespace")
    return raw


def _phone_claim(raw: str, region: str, tier: Tier) -> Claim:
    if _ZEROS.match(raw):
        raise Unusable("withheld or all-zero number")
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise Unusable(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_possible_number(number):
        raise Unusable("not a possible phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if e164 in _JUNK_VALUES or _ZEROS.match(e164):
        raise Unusable("withheld or all-zero number")
    attributes = (("extension", number.extension),) if number.extension else ()
    return Claim(IdentifierKey(AddressKind.PHONE, "", e164), tier, _brazil_variant(number), attributes)


def _brazil_variant(number: phonenumbers.PhoneNumber) -> str | None:
    """Brazilian mobiles gained a leading 9 in 2012-2016; old WhatsApp registrations still arrive without
    it. Both forms share this variant key, so they meet as a suggestion, never as an automatic merge."""
    if number.country_code != 55:
        return None
    national = str(number.national_number)
    if len(national) == 10 and national[2] in "6789":
        national = national[:2] + "9" + national[2:]
    if len(national) == 11 and national[2] == "9":
        return f"phone-br9:+55{national}"
    return None


def _email_claim(raw: str, tier: Tier, check_junk: bool) -> Claim:
    # Trim and lower-case the whole address: mailbox providers treat the local part case-insensitively in
    # practice, and a case-sensitive key would split one customer in two far more often than it joins two.
    value = raw.strip().lower()
    if value.startswith("mailto:"):
        value = value[len("mailto:") :]
    if not _EMAIL.match(value):
        raise Unusable("not an e-mail address")
    local, _, domain = value.rpartition("@")
    if check_junk and (local in _JUNK_EMAIL_LOCAL or domain in _JUNK_EMAIL_DOMAINS):
        raise Unusable("test, role or no-reply address")
    variant = None
    if domain in _GMAIL:
        # Gmail ignores dots and "+tags"; the canonical form is only ever a candidate key (a typo
        # elsewhere would otherwise merge strangers).
        canonical = local.split("+", 1)[0].replace(".", "")
        variant = f"email-gmail:{canonical}@gmail.com"
    return Claim(IdentifierKey(AddressKind.EMAIL, "", value), tier, variant)


def claims_for(
    addresses: Iterable[Address], policy: NormalisationPolicy
) -> tuple[tuple[Claim, ...], tuple[Dropped, ...]]:
    """Every claim the addresses of one interaction make, and the values set aside as junk."""
    claims: list[Claim] = []
    dropped: list[Dropped] = []
    for address in addresses:
        try:
            claims.extend(normalise(address, policy))
        except Unusable as exc:
            dropped.append(Dropped(address.kind.value, DropReason.JUNK, str(exc)))
    return tuple(claims), tuple(dropped)
