from __future__ import annotations

import pytest

from omnirouter_identity.core.identifiers import IdentifierKey, Tier
from omnirouter_identity.core.normalise import NormalisationPolicy, Unusable, claims_for, normalise
from omnirouter_shared.contracts.common import AddressKind
from tests.identity.helpers import POLICY, addr


def one(kind: str, value: str, policy: NormalisationPolicy = POLICY, **kw: object) -> IdentifierKey:
    found = normalise(addr(kind, value, **kw), policy)  # type: ignore[arg-type]
    return found[0].key


def test_national_phone_uses_the_default_region() -> None:
    assert one("phone", "(650) 253-2222").value == "+16502532222"


def test_extension_is_an_attribute_not_part_of_the_key() -> None:
    (claim,) = normalise(addr("phone", "+1 650-253-2222 ext 45"), POLICY)
    assert claim.key.value == "+16502532222"
    assert dict(claim.attributes) == {"extension": "45"}


def test_german_numbers_written_two_ways_match() -> None:
    gb = NormalisationPolicy(default_region="GB")
    assert one("phone", "0049 30 1234567", gb) == one("phone", "+49 030 1234567", gb)
    assert one("phone", "+49 030 1234567", gb).value == "+49301234567"


def test_whatsapp_id_is_digits_and_also_claims_the_phone() -> None:
    wa, phone = normalise(addr("whatsapp", "+44 7700 900123"), POLICY)
    assert wa.key == IdentifierKey(AddressKind.WHATSAPP, "", "447700900123")
    assert phone.key == IdentifierKey(AddressKind.PHONE, "", "+447700900123")


def test_email_trimmed_and_lower_cased() -> None:
    assert one("email", "  Jane.Doe@Example.ORG.uk ").value == "jane.doe@example.org.uk"


def test_gmail_dots_and_plus_tags_give_only_a_variant_key() -> None:
    (a,) = normalise(addr("email", "J.Doe+x@GMAIL.com"), POLICY)
    (b,) = normalise(addr("email", "jdoe@gmail.com"), POLICY)
    assert a.key != b.key
    assert a.variant_key == b.variant_key == "email-gmail:jdoe@gmail.com"


def test_outlook_dots_are_significant() -> None:
    (a,) = normalise(addr("email", "j.doe@outlook.com"), POLICY)
    (b,) = normalise(addr("email", "jdoe@outlook.com"), POLICY)
    assert a.key != b.key and a.variant_key is None and b.variant_key is None


def test_brazil_ninth_digit_variants_share_a_variant_key() -> None:
    (crm_phone,) = normalise(addr("phone", "+5511988887777"), POLICY)
    _, wa_phone = normalise(addr("whatsapp", "551188887777"), POLICY)
    assert wa_phone.key.value == "+551188887777"
    assert crm_phone.key != wa_phone.key
    assert crm_phone.variant_key == wa_phone.variant_key is not None


def test_page_scoped_ids_are_namespaced_by_page() -> None:
    a = one("messenger", "123", namespace="pageA")
    b = one("messenger", "123", namespace="pageB")
    assert a != b and a.text == "messenger:pageA/123"
    assert IdentifierKey.parse(a.text) == a
    with pytest.raises(Unusable):
        normalise(addr("messenger", "123"), POLICY)


def test_tiers() -> None:
    assert normalise(addr("crm", "100"), POLICY)[0].tier is Tier.STRONG
    assert normalise(addr("login", "u-1"), POLICY)[0].tier is Tier.STRONG
    assert normalise(addr("telegram", "555"), POLICY)[0].tier is Tier.VERIFIED
    assert normalise(addr("email", "a@b.io", verified=False), POLICY)[0].tier is Tier.TYPED


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("phone", "anonymous"),
        ("phone", "Anonymous"),
        ("phone", "+000000"),
        ("phone", "266696687"),
        ("phone", "+1 800 555 0199"),  # the business's own number
        ("email", "test@test.com"),
        ("email", "noreply@shop.io"),
        ("email", "SUPPORT@example.com"),  # the business's own address
        ("webchat", "null"),
        ("webchat", "-1"),
        ("phone", "not a number"),
    ],
)
def test_junk_never_becomes_a_key(kind: str, value: str) -> None:
    found, dropped = claims_for([addr(kind, value)], POLICY)
    assert found == ()
    assert len(dropped) == 1 and dropped[0].key_kind == kind
