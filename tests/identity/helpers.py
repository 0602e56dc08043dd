"""Building addresses and claims for the identity tests."""

from __future__ import annotations

from omnirouter_identity.core.identifiers import Claim
from omnirouter_identity.core.normalise import NormalisationPolicy, business_keys, claims_for
from omnirouter_shared.contracts.common import Address, AddressKind

POLICY = NormalisationPolicy(
    default_region="US", business_keys=business_keys(["+18005550199", "support@example.com"], "US")
)


def addr(kind: str, value: str, *, verified: bool = True, namespace: str | None = None) -> Address:
    return Address(kind=AddressKind(kind), value=value, verified=verified, namespace=namespace)


def claims(*addresses: Address, policy: NormalisationPolicy = POLICY) -> tuple[Claim, ...]:
    found, _ = claims_for(addresses, policy)
    return found
