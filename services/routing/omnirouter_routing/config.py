"""Routing configuration: queues, skills, intents, capacity, timers (YAML -> validated pydantic models).

The configuration is data, not code: ``load_config(path)`` validates the whole file and reports every bad
field by its path (``queues.billing.escalation.0.after``), so an operator can fix a reload that was
refused while the previous configuration keeps running.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from omnirouter_shared.contracts.common import Channel

Proficiency = Annotated[int, Field(ge=0, le=10)]
Seconds = Annotated[float, Field(ge=0)]

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class ConfigError(ValueError):
    """The configuration is invalid; ``problems`` lists ``"path.to.field: message"`` lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid routing configuration {source}:\n  " + "\n  ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SelectionStrategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    LEAST_OCCUPIED = "least_occupied"
    HIGHEST_PROFICIENCY = "highest_proficiency"
    ROUND_ROBIN = "round_robin"


class EscalationStep(_Strict):
    """Applied once the task has waited ``after`` seconds in the queue (steps are cumulative)."""

    after: Seconds
    #: Required skills no longer required (they become preferred: still used to rank agents).
    drop_skills: tuple[str, ...] = ()
    #: New (lower) minimum proficiency for required skills.
    relax_skills: dict[str, Proficiency] = Field(default_factory=dict)
    #: Forget the preferred / last agent and take anyone who fits.
    drop_preferred_agent: bool = False
    priority_boost: int = 0
    overflow_to: str | None = None


class ClosedAction(StrEnum):
    QUEUE = "queue"  # accept and wait for the queue to open (agents still on shift may take it)
    REJECT = "reject"  # close the task; the adapter replies with ``closed_message``
    OVERFLOW = "overflow"  # send it to ``overflow_to`` (e.g. an after-hours or partner queue)


class BusinessHours(_Strict):
    timezone: str = "UTC"
    #: ``mon: ["09:00-12:30", "13:30-18:00"]``; a day not listed is closed. End "24:00" = midnight.
    weekly: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    holidays: tuple[date, ...] = ()
    closed_action: ClosedAction = ClosedAction.QUEUE
    closed_message: str | None = None
    overflow_to: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("weekly")
    @classmethod
    def _spans(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        for day, spans in value.items():
            if day not in _WEEKDAYS:
                raise ValueError(f"unknown day {day!r}; use one of {', '.join(_WEEKDAYS)}")
            for span in spans:
                m = _SPAN.match(span)
                if not m:
                    raise ValueError(f"{day}: {span!r} is not HH:MM-HH:MM")
                h1, m1, h2, m2 = (int(g) for g in m.groups())
                if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2) or (h1, m1) >= (h2, m2):
                    raise ValueError(f"{day}: {span!r} is not a valid span within one day")
        return value

    @model_validator(mode="after")
    def _overflow_target(self) -> Self:
        if self.closed_action is ClosedAction.OVERFLOW and not self.overflow_to:
            raise ValueError("closed_action overflow needs overflow_to")
        return self

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        spans = self.weekly.get(_WEEKDAYS[local.weekday()], ())
        minute = local.hour * 60 + local.minute
        for span in spans:
            h1, m1, h2, m2 = (int(g) for g in _SPAN.match(span).groups())  # type: ignore[union-attr]
            if h1 * 60 + m1 <= minute < h2 * 60 + m2:
                return True
        return False


class QueueConfig(_Strict):
    required_skills: dict[str, Proficiency] = Field(default_factory=dict)
    preferred_skills: dict[str, Proficiency] = Field(default_factory=dict)
    priority: int = 0
    #: Priority points gained per minute of waiting, so old work overtakes new higher-priority work.
    aging_per_minute: float = Field(default=1.0, ge=0)
    strategy: SelectionStrategy = SelectionStrategy.LONGEST_IDLE
    escalation: tuple[EscalationStep, ...] = ()
    business_hours: BusinessHours | None = None
    #: New conversations are offered to bots (agents of kind bot) first; humans after ``bot_wait``.
    bot_first: bool = False
    bot_wait: Seconds = 30.0
    #: Answered within this many seconds counts towards the service level.
    service_level_threshold: Seconds = 20.0
    offer_timeout: Seconds | None = None
    wrapup_time_limit: Seconds | None = None

    @field_validator("escalation")
    @classmethod
    def _ordered(cls, steps: tuple[EscalationStep, ...]) -> tuple[EscalationStep, ...]:
        afters = [s.after for s in steps]
        if afters != sorted(afters):
            raise ValueError("escalation steps must be in increasing 'after' order")
        return steps


class LanguageMatch(_Strict):
    keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    #: Skills added when this language's rule matched (e.g. ``spanish: 4``).
    skills: dict[str, Proficiency] = Field(default_factory=dict)

    @field_validator("regex")
    @classmethod
    def _compiles(cls, patterns: tuple[str, ...]) -> tuple[str, ...]:
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise ValueError(f"bad regular expression {p!r}: {exc}") from exc
        return patterns


class IntentRule(_Strict):
    """Matched against the first message of a conversation (subject + text), first rule wins."""

    name: str = Field(min_length=1)
    languages: dict[str, LanguageMatch] = Field(min_length=1)
    queue: str | None = None
    required_skills: dict[str, Proficiency] = Field(default_factory=dict)
    priority_boost: int = 0


class EntryRule(_Strict):
    channel: Channel
    queue: str


#: Of 60 units: a call takes everything, a chat or messaging thread a third, an email a fifth.
_DEFAULT_WEIGHTS = {
    Channel.VOICE: 60,
    Channel.WEBCHAT: 20,
    Channel.SMS: 20,
    Channel.MMS: 20,
    Channel.WHATSAPP: 20,
    Channel.MESSENGER: 20,
    Channel.INSTAGRAM: 20,
    Channel.TELEGRAM: 20,
    Channel.EMAIL: 12,
}


class CapacityConfig(_Strict):
    """Weighted capacity: each agent has ``units``; each open task costs its channel's weight.

    Integer units keep the arithmetic exact (a chat costing 1/3 of a float capacity would drift).
    """

    units: int = Field(default=60, ge=1)
    weights: dict[Channel, int] = Field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    default_weight: int = Field(default=20, ge=0)
    #: While an agent holds a task on the key channel, no new task on the listed channels is offered.
    blocks: dict[Channel, tuple[Channel, ...]] = Field(default_factory=dict)
    #: Per-channel maxima for agents whose roster entry gives none.
    default_per_channel: dict[Channel, int] = Field(
        default_factory=lambda: {c: 3 for c in Channel} | {Channel.VOICE: 1, Channel.EMAIL: 5}
    )

    def weight(self, channel: Channel) -> int:
        return self.weights.get(channel, self.default_weight)


class TimersConfig(_Strict):
    offer_timeout: Seconds = 30.0
    max_missed_offers: int = Field(default=3, ge=1)
    count_rejects_as_missed: bool = True
    wrapup_time_limit: Seconds = 60.0
    #: How long a new task waits for the conversation's last agent (never if that agent is offline).
    last_agent_wait: Seconds = 60.0
    #: How long after a conversation ended its last agent is still "the last agent".
    last_agent_memory: Seconds = 7 * 24 * 3600.0
    transfer_wait: Seconds = 30.0
    #: An agent who rejected a task is not offered it again for this long (unless nobody else fits).
    decline_cooldown: Seconds = 120.0
    #: Assigned tasks of an agent who goes offline go back to the queue (the desktop is gone).
    requeue_assigned_on_offline: bool = True


def _default_windows() -> dict[Channel, float]:
    day = 24 * 3600.0
    windows = {c: 30 * 60.0 for c in Channel}
    windows.update(
        {
            Channel.VOICE: 0.0,
            Channel.SMS: day,
            Channel.MMS: day,
            Channel.WHATSAPP: day,
            Channel.EMAIL: 3 * day,
        }
    )
    return windows


class RoutingConfig(_Strict):
    version: Literal[1] = 1
    default_queue: str = "default"
    queues: dict[str, QueueConfig] = Field(default_factory=lambda: {"default": QueueConfig()})
    intents: tuple[IntentRule, ...] = ()
    entry: tuple[EntryRule, ...] = ()
    capacity: CapacityConfig = CapacityConfig()
    timers: TimersConfig = TimersConfig()
    #: How long after its last message a conversation stays open, per channel (seconds).
    conversation_windows: dict[Channel, Seconds] = Field(default_factory=_default_windows)
    #: Added to the priority of tasks on these channels (customers on the line come first).
    channel_priority: dict[Channel, int] = Field(
        default_factory=lambda: {Channel.VOICE: 10, Channel.WEBCHAT: 5}
    )
    max_messages_per_task: int = Field(default=50, ge=1)
    #: Event ids remembered for idempotency (a redelivered batch is far smaller than this).
    dedup_window: int = Field(default=100_000, ge=1)

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems: list[str] = []
        if self.default_queue not in self.queues:
            problems.append(f"default_queue: queue {self.default_queue!r} is not defined")
        for name, q in self.queues.items():
            for i, step in enumerate(q.escalation):
                if step.overflow_to and step.overflow_to not in self.queues:
                    problems.append(
                        f"queues.{name}.escalation.{i}.overflow_to: unknown queue {step.overflow_to!r}"
                    )
            bh = q.business_hours
            if bh and bh.overflow_to and bh.overflow_to not in self.queues:
                problems.append(f"queues.{name}.business_hours.overflow_to: unknown queue {bh.overflow_to!r}")
        for i, rule in enumerate(self.intents):
            if rule.queue and rule.queue not in self.queues:
                problems.append(f"intents.{i}.queue: unknown queue {rule.queue!r}")
        for i, entry in enumerate(self.entry):
            if entry.queue not in self.queues:
                problems.append(f"entry.{i}.queue: unknown queue {entry.queue!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def queue(self, name: str) -> QueueConfig:
        return self.queues.get(name) or self.queues[self.default_queue]

    def window(self, channel: Channel) -> timedelta:
        return timedelta(seconds=self.conversation_windows.get(channel, 30 * 60.0))

    def offer_timeout(self, queue: str) -> float:
        q = self.queue(queue).offer_timeout
        return self.timers.offer_timeout if q is None else q

    def wrapup_limit(self, queue: str) -> float:
        q = self.queue(queue).wrapup_time_limit
        return self.timers.wrapup_time_limit if q is None else q


def parse_config(data: Any, source: str = "<config>") -> RoutingConfig:
    """Validate already-parsed YAML/JSON data; raises :class:`ConfigError` naming each bad field."""
    if data is None:
        data = {}
    try:
        return RoutingConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]) or "<root>"
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {msg}")
        raise ConfigError(source, problems) from None


def load_config(path: str | Path) -> RoutingConfig:
    """Read and validate a YAML file; call again to reload (the engine takes it via ``reconfigure``)."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(p), [f"<file>: cannot read: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(str(p), [f"<yaml>: {exc}"]) from None
    return parse_config(data, str(p))
