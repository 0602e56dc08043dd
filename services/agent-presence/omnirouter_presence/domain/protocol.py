"""The desktop protocol: what a desktop may send (WebSocket frames, and the bodies of the REST actions).

Every client frame is a JSON object with a ``type``; an optional ``ref`` is echoed in the server's
``ack`` or ``error`` so a client can match answers to requests.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from omnirouter_shared.contracts.common import Attachment

Ref = Annotated[str, Field(max_length=128)]


class _Frame(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    ref: Ref | None = None


class StatusCommand(_Frame):
    type: Literal["status"] = "status"
    status: str = Field(max_length=32)
    reason: str | None = Field(default=None, max_length=64)


class AcceptCommand(_Frame):
    type: Literal["accept"] = "accept"
    task_id: str | None = Field(default=None, max_length=128)
    offer_id: str | None = Field(default=None, max_length=128)

    @model_validator(mode="after")
    def _one(self) -> AcceptCommand:
        if not self.task_id and not self.offer_id:
            raise ValueError("task_id or offer_id is required")
        return self


class RejectCommand(_Frame):
    type: Literal["reject"] = "reject"
    task_id: str | None = Field(default=None, max_length=128)
    offer_id: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one(self) -> RejectCommand:
        if not self.task_id and not self.offer_id:
            raise ValueError("task_id or offer_id is required")
        return self


class CompleteCommand(_Frame):
    type: Literal["complete"] = "complete"
    task_id: str = Field(max_length=128)
    close_conversation: bool = False
    disposition: str | None = Field(default=None, max_length=200)


class WrapupDoneCommand(_Frame):
    type: Literal["wrapup_done"] = "wrapup_done"
    task_id: str = Field(max_length=128)


class TransferCommand(_Frame):
    type: Literal["transfer"] = "transfer"
    task_id: str = Field(max_length=128)
    to_agent_id: str | None = Field(default=None, max_length=128)
    to_queue: str | None = Field(default=None, max_length=128)
    note: str | None = Field(default=None, max_length=2000)
    intent: str | None = Field(default=None, max_length=128)
    transcript: tuple[Annotated[str, Field(max_length=4000)], ...] = Field(default=(), max_length=200)

    @model_validator(mode="after")
    def _target(self) -> TransferCommand:
        if bool(self.to_agent_id) == bool(self.to_queue):
            raise ValueError("exactly one of to_agent_id and to_queue is required")
        return self


class ReplyCommand(_Frame):
    type: Literal["reply"] = "reply"
    task_id: str = Field(max_length=128)
    text: str = Field(min_length=1, max_length=20_000)
    subject: str | None = Field(default=None, max_length=998)
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=10)
    #: Client-chosen id: the same reply sent twice (a retry after a lost answer) is sent once.
    reply_id: str | None = Field(default=None, min_length=8, max_length=128)


class HeartbeatCommand(_Frame):
    type: Literal["heartbeat"] = "heartbeat"


class ResumeCommand(_Frame):
    type: Literal["resume"] = "resume"


ClientCommand = Annotated[
    StatusCommand
    | AcceptCommand
    | RejectCommand
    | CompleteCommand
    | WrapupDoneCommand
    | TransferCommand
    | ReplyCommand
    | HeartbeatCommand
    | ResumeCommand,
    Field(discriminator="type"),
]

CLIENT_COMMANDS: TypeAdapter[ClientCommand] = TypeAdapter(ClientCommand)
