"""Twilio's request signature, computed exactly as ``twilio.request_validator`` does, over the URL
the vendor called (with and without its default port, as Twilio's own validator accepts)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit, urlunsplit

from omnirouter_gateway.inbound.base import BadSignature, MissingSignature, RawRequest

HEADER = "X-Twilio-Signature"


def compute_signature(token: str, url: str, pairs: Iterable[tuple[str, str]]) -> str:
    by_name: dict[str, set[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, set()).add(value)
    data = url
    for name in sorted(by_name):
        for value in sorted(by_name[name]):
            data += name + value
    mac = hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def _url_variants(url: str) -> list[str]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    without = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    with_port = urlunsplit(
        (parts.scheme, f"{host}:{parts.port or default}", parts.path, parts.query, parts.fragment)
    )
    return list(dict.fromkeys([url, without, with_port]))


def verify(token: str, request: RawRequest) -> None:
    signature = request.headers.get(HEADER)
    if not signature:
        raise MissingSignature(f"{HEADER} header is missing")
    body_sha = parse_qs(urlsplit(request.url).query).get("bodySHA256")
    if body_sha:
        # JSON bodies: the body is bound by its hash in the URL, and the URL is signed alone.
        digest = hashlib.sha256(request.body).hexdigest()
        if not hmac.compare_digest(digest, body_sha[0]):
            raise BadSignature("bodySHA256 does not match the body")
        pairs: list[tuple[str, str]] = []
    else:
        pairs = request.form_pairs()
    for url in _url_variants(request.url):
        if hmac.compare_digest(compute_signature(token, url, pairs).encode(), signature.encode()):
            return
    raise BadSignature(f"{HEADER} does not match the request")
