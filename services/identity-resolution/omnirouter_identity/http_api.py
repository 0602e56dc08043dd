"""The customer API: profiles, the timeline, interactions recorded by other systems, consent, splits,
erasure, suggestions and conflicts. Handlers parse, run one serializable transaction, publish what it
staged, and answer JSON."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from omnirouter_identity import events
from omnirouter_identity.core.normalise import claims_for
from omnirouter_identity.http_auth import require_admin
from omnirouter_identity.resolution import Outcome, Resolver
from omnirouter_identity.store import lifecycle, outbox, profiles, timeline
from omnirouter_identity.store.graph import AppliedMerge, Observation
from omnirouter_identity.store.lifecycle import OperationRefused
from omnirouter_identity.store.outbox import OutboxEvent
from omnirouter_identity.store.tx import serializable
from omnirouter_shared.contracts.common import Address, AddressKind, Channel
from omnirouter_shared.http.errors import ApiError
from omnirouter_shared.kafka.producer import BrokerUnavailable, EventProducer
from omnirouter_shared.observability.logging import get_logger

log = get_logger(__name__)

OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

#: The identifier kinds an opt-out on a channel applies to.
CHANNEL_KINDS: dict[Channel, tuple[AddressKind, ...]] = {
    Channel.SMS: (AddressKind.PHONE,),
    Channel.MMS: (AddressKind.PHONE,),
    Channel.VOICE: (AddressKind.PHONE,),
    Channel.WHATSAPP: (AddressKind.WHATSAPP,),
    Channel.EMAIL: (AddressKind.EMAIL,),
    Channel.MESSENGER: (AddressKind.MESSENGER,),
    Channel.INSTAGRAM: (AddressKind.INSTAGRAM,),
    Channel.TELEGRAM: (AddressKind.TELEGRAM,),
    Channel.WEBCHAT: (AddressKind.WEBCHAT,),
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IdentifierIn(_Body):
    kind: AddressKind
    value: str = Field(min_length=1, max_length=512)
    namespace: str | None = Field(default=None, max_length=256)
    #: A system recording by CRM id or a verified address says so; a typed value never merges.
    verified: bool = True


class InteractionIn(_Body):
    #: The recording system's own id for the record: recording it again is a no-op.
    entry_id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:\-]+$")
    customer_id: str | None = Field(default=None, max_length=100)
    identifier: IdentifierIn | None = None
    channel: Channel | None = None
    direction: Literal["inbound", "outbound", "note"] = "note"
    kind: str = Field(default="note", min_length=1, max_length=40, pattern=r"^[a-z_]+$")
    summary: str = Field(min_length=1, max_length=2000)
    occurred_at: datetime | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class ConsentChange(_Body):
    #: None: every channel.
    channel: Channel | None = None
    opted_out: bool
    #: Limit the change to one of the customer's addresses ("phone:+14155550100"); default: all of them
    #: on the channel.
    address: str | None = None


class ConsentIn(_Body):
    preferred_channel: Channel | None = None
    changes: tuple[ConsentChange, ...] = ()
    reason: str = Field(default="agent recorded", min_length=1, max_length=200)


class SplitIn(_Body):
    restore_id: str = Field(min_length=1, max_length=100)


async def _json(request: web.Request, model: type[M]) -> M:
    try:
        raw = await request.read()
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        errs = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ApiError(400, "invalid_body", errs) from None


def _limit(request: web.Request, default: int = 20, most: int = 200) -> int:
    raw = request.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise ApiError(400, "invalid_limit", f"limit must be an integer between 1 and {most}")
    return int(raw)


class CustomerApi:
    def __init__(self, pool: asyncpg.Pool, producer: EventProducer, resolver: Resolver) -> None:
        self._pool = pool
        self._producer = producer
        self._resolver = resolver

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/openapi.yaml", self.openapi),
            web.get("/v1/customers/{id}", self.get_customer),
            web.delete("/v1/customers/{id}", self.erase),
            web.get("/v1/customers/{id}/timeline", self.get_timeline),
            web.post("/v1/customers/{id}/interactions", self.record_for_customer),
            web.post("/v1/interactions", self.record),
            web.get("/v1/customers/{id}/consent", self.get_consent),
            web.put("/v1/customers/{id}/consent", self.put_consent),
            web.post("/v1/customers/{id}/split", self.split),
            web.get("/v1/suggestions", self.suggestions),
            web.post("/v1/suggestions/{sid}/accept", self.accept_suggestion),
            web.post("/v1/suggestions/{sid}/dismiss", self.dismiss_suggestion),
            web.get("/v1/conflicts", self.conflicts),
        ]

    # -- plumbing --------------------------------------------------------------------------------------
    async def _tx(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        try:
            return await serializable(self._pool, work)
        except OperationRefused as exc:
            status = 404 if exc.code == "not_found" else 409
            raise ApiError(status, exc.code, str(exc)) from None

    async def _publish(self, source_id: str) -> None:
        try:
            await outbox.publish(self._pool, self._producer, [source_id])
        except BrokerUnavailable as exc:
            # Committed and staged: the outbox sweeper publishes it once the broker is back.
            log.warning("publish deferred to the outbox sweeper", extra={"error": str(exc)})

    @staticmethod
    async def _live(conn: asyncpg.Connection, customer_id: str) -> str:
        found = await profiles.canonical(conn, customer_id)
        if found is None:
            raise ApiError(404, "not_found", f"no customer {customer_id}")
        if found.status == "erased":
            raise ApiError(410, "erased", f"customer {customer_id} was erased")
        return found.id

    # -- reads -----------------------------------------------------------------------------------------
    async def openapi(self, _: web.Request) -> web.Response:
        return web.Response(body=OPENAPI.read_bytes(), content_type="application/yaml")

    async def get_customer(self, request: web.Request) -> web.Response:
        requested = request.match_info["id"]

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            pid = await self._live(conn, requested)
            return {"requested_id": requested, **await profiles.describe(conn, pid)}

        return web.json_response(await self._tx(work))

    async def get_timeline(self, request: web.Request) -> web.Response:
        requested = request.match_info["id"]
        limit = _limit(request)
        cursor = request.query.get("cursor") or request.query.get("before")
        channel_text = request.query.get("channel")
        try:
            channel = Channel(channel_text) if channel_text else None
        except ValueError:
            raise ApiError(400, "invalid_channel", f"unknown channel {channel_text!r}") from None
        if cursor:
            try:
                timeline.decode_cursor(cursor)
            except ValueError:
                raise ApiError(400, "invalid_cursor", "the cursor was not issued by this API") from None

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            pid = await self._live(conn, requested)
            page = await timeline.page(conn, pid, limit=limit, cursor=cursor, channel=channel)
            return {
                "customer_id": pid,
                "items": [i.model_dump(mode="json") for i in page.items],
                "next_cursor": page.next_cursor,
            }

        return web.json_response(await self._tx(work))

    async def get_consent(self, request: web.Request) -> web.Response:
        requested = request.match_info["id"]

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            pid = await self._live(conn, requested)
            return {"customer_id": pid, **await profiles.consent(conn, pid)}

        return web.json_response(await self._tx(work))

    async def suggestions(self, request: web.Request) -> web.Response:
        limit = _limit(request, 50, 500)
        status = request.query.get("status", "open")
        if status not in {"open", "accepted", "dismissed"}:
            raise ApiError(400, "invalid_status", "status must be open, accepted or dismissed")
        rows = await self._pool.fetch(
            "SELECT id, profile_id, candidate_id, reason, identifier_kind, status, created_at FROM suggestions"
            " WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            status,
            limit,
        )
        return web.json_response(
            {"items": [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]}
        )

    async def conflicts(self, request: web.Request) -> web.Response:
        limit = _limit(request, 50, 500)
        rows = await self._pool.fetch(
            "SELECT id, kind, profile_id, other_profile_id, identifier_kind, detail, interaction_id, created_at"
            " FROM conflicts ORDER BY created_at DESC, id DESC LIMIT $1",
            limit,
        )
        return web.json_response(
            {"items": [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]}
        )

    # -- interactions from other systems -------------------------------------------------------------
    async def record_for_customer(self, request: web.Request) -> web.Response:
        body = await _json(request, InteractionIn)
        if body.identifier is not None or body.customer_id not in (None, request.match_info["id"]):
            raise ApiError(
                400, "invalid_body", "the customer is in the path; omit customer_id and identifier"
            )
        return await self._record(body.model_copy(update={"customer_id": request.match_info["id"]}))

    async def record(self, request: web.Request) -> web.Response:
        body = await _json(request, InteractionIn)
        if (body.customer_id is None) == (body.identifier is None):
            raise ApiError(400, "invalid_body", "give exactly one of customer_id or identifier")
        return await self._record(body)

    async def _record(self, body: InteractionIn) -> web.Response:
        at = body.occurred_at or datetime.now(UTC)
        if at.tzinfo is None:
            raise ApiError(400, "invalid_body", "occurred_at needs a time zone")
        entry_id = f"ext:{body.source}:{body.entry_id}"
        staged: list[OutboxEvent] = []
        outcome_box: list[Outcome] = []

        async def work(conn: asyncpg.Connection) -> tuple[str, bool]:
            staged.clear()
            outcome_box.clear()
            identifier_id = None
            if body.customer_id is not None:
                pid = await self._live(conn, body.customer_id)
            else:
                assert body.identifier is not None
                ident = body.identifier
                address = Address(
                    kind=ident.kind, value=ident.value, namespace=ident.namespace, verified=ident.verified
                )
                claims, dropped = claims_for([address], self._resolver.policy)
                if not claims:
                    reason = dropped[0].detail if dropped else "not an identifier"
                    raise ApiError(
                        422, "unusable_identifier", f"the identifier cannot identify anyone: {reason}"
                    )
                obs = Observation(source=f"api:{body.source}", observed_at=at, interaction_id=entry_id)
                outcome = await self._resolver.resolve(conn, [address], obs, source_id=entry_id)
                if outcome.profile_id is None:
                    raise ApiError(410, "erased", "this identifier belongs to an erased customer")
                outcome_box.append(outcome)
                pid = outcome.profile_id
                identifier_id = next(iter(outcome.identifier_ids.values()), None)
                for merge in outcome.merges:
                    staged.extend(
                        events.merged(merge, domains=["default"], correlation_id=entry_id, causation_id=None)
                    )
            recorded = await timeline.record(
                conn,
                timeline.NewEntry(
                    entry_id=entry_id,
                    profile_id=pid,
                    direction=body.direction,
                    kind=body.kind,
                    summary=body.summary,
                    source=body.source,
                    occurred_at=at,
                    channel=body.channel,
                    identifier_id=identifier_id,
                    data=body.data,
                ),
            )
            await outbox.stage(conn, [(entry_id, e) for e in staged])
            return pid, recorded

        pid, recorded = await self._tx(work)
        for outcome in outcome_box:
            self._resolver.after_commit(outcome)
        if staged:
            await self._publish(entry_id)
        return web.json_response(
            {"customer_id": pid, "entry_id": entry_id, "recorded": recorded}, status=201 if recorded else 200
        )

    # -- consent -------------------------------------------------------------------------------------
    async def put_consent(self, request: web.Request) -> web.Response:
        requested = request.match_info["id"]
        body = await _json(request, ConsentIn)
        at = datetime.now(UTC)
        source_id = f"consent:{uuid.uuid4()}"

        async def work(conn: asyncpg.Connection) -> dict[str, Any]:
            pid = await self._live(conn, requested)
            if "preferred_channel" in body.model_fields_set:
                await conn.execute(
                    "UPDATE profiles SET preferred_channel = $2, updated_at = $3 WHERE id = $1",
                    pid,
                    body.preferred_channel.value if body.preferred_channel else None,
                    at,
                )
            owned = [
                Address(kind=AddressKind(kind), value=value, namespace=ns or None)
                for kind, ns, value in await profiles.addresses_of(conn, pid)
            ]
            staged: list[tuple[str, OutboxEvent]] = []
            for change in body.changes:
                kinds = CHANNEL_KINDS[change.channel] if change.channel else tuple(AddressKind)
                targets = [a for a in owned if a.kind in kinds and change.address in (None, a.key)]
                if change.address is not None and not targets:
                    raise ApiError(
                        422,
                        "unknown_address",
                        f"{change.address} is not an address of this customer on that channel",
                    )
                for address in targets:
                    if await profiles.set_consent(
                        conn,
                        profile_id=pid,
                        address_key=address.key,
                        channel=change.channel,
                        opted_out=change.opted_out,
                        reason=body.reason,
                        at=at,
                    ):
                        staged.append(
                            (
                                source_id,
                                events.consent_changed(
                                    customer_id=pid,
                                    address=address,
                                    channel=change.channel,
                                    opted_out=change.opted_out,
                                    reason=body.reason,
                                    at=at,
                                    source_id=source_id,
                                ),
                            )
                        )
            await outbox.stage(conn, staged)
            return {"customer_id": pid, **await profiles.consent(conn, pid)}

        result = await self._tx(work)
        await self._publish(source_id)
        return web.json_response(result)

    # -- admin: split, suggestions, erasure ----------------------------------------------------------
    async def split(self, request: web.Request) -> web.Response:
        require_admin(request)
        body = await _json(request, SplitIn)
        requested = request.match_info["id"]
        at = datetime.now(UTC)

        async def work(conn: asyncpg.Connection) -> lifecycle.SplitResult:
            pid = await self._live(conn, requested)
            result = await lifecycle.split(conn, pid, body.restore_id, actor="admin", at=at)
            await outbox.stage(conn, [(result.split_id, e) for e in events.split(result)])
            return result

        result = await self._tx(work)
        self._resolver.cache.invalidate_profiles([result.survivor_id, result.restored_id])
        await self._publish(result.split_id)
        return web.json_response(
            {
                "split_id": result.split_id,
                "survivor_id": result.survivor_id,
                "restored_id": result.restored_id,
                "identifier_keys": list(result.identifier_keys),
            }
        )

    async def accept_suggestion(self, request: web.Request) -> web.Response:
        require_admin(request)
        sid = _suggestion_id(request)
        at = datetime.now(UTC)

        async def work(conn: asyncpg.Connection) -> AppliedMerge:
            merge = await lifecycle.accept_suggestion(conn, sid, actor="admin", at=at)
            domains = await lifecycle.routing_domains(conn, [merge.survivor_id])
            staged = events.merged(merge, domains=domains, correlation_id=None, causation_id=None)
            await outbox.stage(conn, [(merge.merge_id, e) for e in staged])
            return merge

        merge = await self._tx(work)
        self._resolver.cache.invalidate_profiles([merge.absorbed_id])
        await self._publish(merge.merge_id)
        return web.json_response(
            {"merge_id": merge.merge_id, "survivor_id": merge.survivor_id, "merged_ids": [merge.absorbed_id]}
        )

    async def dismiss_suggestion(self, request: web.Request) -> web.Response:
        require_admin(request)
        sid = _suggestion_id(request)

        async def work(conn: asyncpg.Connection) -> None:
            await lifecycle.dismiss_suggestion(conn, sid, at=datetime.now(UTC))

        await self._tx(work)
        return web.json_response({"id": sid, "status": "dismissed"})

    async def erase(self, request: web.Request) -> web.Response:
        require_admin(request)
        requested = request.match_info["id"]
        at = datetime.now(UTC)
        source_id = f"erase:{requested}:{at.isoformat()}"

        async def work(conn: asyncpg.Connection) -> lifecycle.ErasureResult:
            pid = await self._live(conn, requested)
            result = await lifecycle.erase(conn, pid, actor="admin", at=at)
            await outbox.stage(conn, [(source_id, e) for e in events.erased(result, at=at)])
            return result

        result = await self._tx(work)
        self._resolver.cache.invalidate_profiles([result.profile_id, *result.alias_ids])
        await self._publish(source_id)
        return web.json_response(
            {
                "customer_id": result.profile_id,
                "erased_ids": [result.profile_id, *result.alias_ids],
                "identifiers_erased": result.identifiers_erased,
            }
        )


def _suggestion_id(request: web.Request) -> int:
    raw = request.match_info["sid"]
    # ASCII digits only (str.isdigit() takes "²", which int() refuses), and within bigint.
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_BIGINT:
        raise ApiError(404, "not_found", f"no suggestion {raw[:40]}")
    return int(raw)


_MAX_BIGINT = 2**63 - 1
