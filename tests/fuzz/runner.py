"""Fuzz a running service from its OpenAPI document with schemathesis, and report every finding at once.

The service runs in-process on the test's event loop; the fuzzing runs in a worker thread (schemathesis
calls are synchronous), so the loop keeps serving while hypothesis generates and sends the cases.

Each operation is fuzzed once per *identity* (a name and the headers it sends: a valid token, none, a
wrong one) and per generation mode (positive: requests the document allows; negative: requests it
forbids). Every response must be no 5xx, and have a status code, content type and (for JSON) a body the
document declares for that operation; an identity may add its own expectation (e.g. "never 2xx").
Findings are collected instead of raised, so one run shows them all (no shrinking: the cases are small).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROOT = Path(__file__).resolve().parents[2]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]

#: An extra expectation for one identity: returns a problem, or None when the response is fine.
Expect = Callable[[Case, requests.Response], str | None]


def never_2xx(_: Case, response: requests.Response) -> str | None:
    if response.status_code < 300 or response.status_code >= 500:
        return f"expected a 4xx without valid credentials, got {response.status_code}"
    return None


@dataclass(frozen=True)
class Identity:
    """Who calls: a name for the report, the headers sent (None removes a generated header), the
    path parameters pinned (e.g. the agent's own id with its token), and an extra expectation."""

    name: str
    headers: Mapping[str, str | None] = field(default_factory=dict)
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    expect: Expect | None = None
    max_examples: int | None = None
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    #: A 5xx this identity may see by design (e.g. 503 for a vendor whose secret is unset).
    server_error_ok: Callable[[requests.Response], bool] | None = None


@dataclass
class Finding:
    operation: str
    identity: str
    mode: str
    status: int | None
    problem: str
    request: str

    def __str__(self) -> str:
        return f"{self.operation} [{self.identity}/{self.mode}] → {self.status}: {self.problem}\n    {self.request}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    requests: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    call_s: float = 0.0
    check_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, finding: Finding) -> None:
        with self.lock:
            # One per operation, identity and problem kind is enough to act on.
            key = (finding.operation, finding.identity, finding.problem.splitlines()[0][:80])
            if all((f.operation, f.identity, f.problem.splitlines()[0][:80]) != key for f in self.findings):
                self.findings.append(finding)

    def summary(self) -> str:
        return "\n".join(str(f) for f in self.findings)


def load(document: Path, base_url: str) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_path(document)
    schema.config.base_url = base_url  # type: ignore[misc]
    return schema


def operations(schema: schemathesis.BaseSchema) -> list[APIOperation]:
    return [result.ok() for result in schema.get_all_operations()]


def _describe(case: Case, response: requests.Response | None) -> str:
    body = case.body if not isinstance(case.body, bytes | str) else repr(case.body)[:200]
    sent = f"{case.method} {case.formatted_path} query={case.query} body={str(body)[:200]}"
    if response is not None:
        sent += f" ← {response.headers.get('Content-Type')} {response.text[:200]!r}"
    return sent


def fuzz_operation(
    op: APIOperation,
    base_url: str,
    identity: Identity,
    report: Report,
    *,
    max_examples: int = 20,
    session: requests.Session,
) -> None:
    for mode in identity.modes:
        path_parameters = {k: v for k, v in identity.path_parameters.items() if op.get_parameter(k, "path")}
        strategy = op.as_strategy(mode, path_parameters=path_parameters or None)
        body = functools.partial(_one_case, op, identity, mode.value, base_url, session, report)
        run = hypothesis.settings(
            max_examples=identity.max_examples or max_examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(hypothesis.given(case=strategy)(_test_of(body)))
        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # Nothing to vary in this mode (a negative case of an operation without parameters).
            continue


def _test_of(body: Callable[[Case], None]) -> Callable[[Case], None]:
    def test(case: Case) -> None:
        body(case)

    return test


def _one_case(
    op: APIOperation,
    identity: Identity,
    mode: str,
    base_url: str,
    session: requests.Session,
    report: Report,
    case: Case,
) -> None:
    headers = dict(case.headers or {})
    for name, value in identity.headers.items():
        for k in [k for k in headers if k.lower() == name.lower()]:
            headers.pop(k)
        if value is not None:
            headers[name] = value
    case.headers = headers  # type: ignore[assignment]
    t0 = time.perf_counter()
    try:
        response = case.call(base_url=base_url, session=session, timeout=15, allow_redirects=False)
    except requests.RequestException as exc:
        report.add(Finding(op.label, identity.name, mode, None, f"no response: {exc}", _describe(case, None)))
        return
    raw = _as_requests(response)
    t1 = time.perf_counter()
    with report.lock:
        report.call_s += t1 - t0
        report.requests += 1
        report.by_status[raw.status_code] = report.by_status.get(raw.status_code, 0) + 1
    try:
        excused = raw.status_code >= 500 and identity.server_error_ok and identity.server_error_ok(raw)
        case.validate_response(
            response, checks=[c for c in CHECKS if not (excused and c is not_a_server_error)]
        )
    except (AssertionError, BaseExceptionGroup) as exc:  # a Failure, or a FailureGroup of them
        report.add(
            Finding(op.label, identity.name, mode, raw.status_code, _failure_text(exc), _describe(case, raw))
        )
    report.check_s += time.perf_counter() - t1
    if identity.expect is not None and (problem := identity.expect(case, raw)) is not None:
        report.add(Finding(op.label, identity.name, mode, raw.status_code, problem, _describe(case, raw)))


def _failure_text(exc: BaseException) -> str:
    inner = getattr(exc, "exceptions", None)
    if inner:
        return "; ".join(_failure_text(e) for e in inner)
    title = getattr(exc, "title", None)
    message = getattr(exc, "message", None) or str(exc)
    return f"{title}: {message}".strip() if title else message.strip()


def _as_requests(response: Any) -> requests.Response:
    """schemathesis' own Response, seen as a requests.Response for the expectations."""
    out = requests.Response()
    out.status_code = response.status_code
    out.headers.update({k: ", ".join(v) if isinstance(v, list) else v for k, v in response.headers.items()})
    out._content = response.content
    return out


def fuzz(
    document: Path,
    base_url: str,
    identities_for: Callable[[APIOperation], Iterable[Identity]],
    *,
    max_examples: int = 20,
    skip: Callable[[APIOperation], bool] = lambda _: False,
) -> Report:
    """Fuzz every operation of ``document`` (except ``skip``) as each of its identities."""
    schema = load(document, base_url)
    report = Report()
    with requests.Session() as session:
        for op in operations(schema):
            if skip(op):
                continue
            for identity in identities_for(op):
                fuzz_operation(op, base_url, identity, report, max_examples=max_examples, session=session)
    return report
