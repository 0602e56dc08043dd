"""The agent-facing view of a task, built for offers and assignments."""

from __future__ import annotations

from omnirouter_routing.core.payloads import assemble
from omnirouter_routing.core.state import Task
from omnirouter_shared.contracts.identity import InteractionResolved
from omnirouter_shared.contracts.routing import TaskMessage, TaskView


def message_of(event: InteractionResolved) -> TaskMessage:
    i = event.interaction
    # The input was validated at the edge; rebuilding the sub-model without re-validation keeps the
    # core fast (it handles tens of thousands of events per second).
    return assemble(
        TaskMessage,
        interaction_id=i.interaction_id,
        channel=i.channel,
        sender=i.sender,
        subject=i.subject,
        text=i.text,
        attachments=i.attachments,
        received_at=i.received_at,
    )


def task_view(task: Task, priority: int) -> TaskView:
    return assemble(
        TaskView,
        id=task.id,
        conversation_id=task.conversation_id,
        customer_id=task.customer_id,
        customer_name=task.customer_name,
        channel=task.channel,
        queue=task.queue,
        priority=priority,
        required_skills=dict(task.required),
        intent=task.intent,
        messages=tuple(task.messages),
        history=task.history,
        transcript=tuple(task.transcript),
        reply_to=task.reply_to,
        reply_from=task.reply_from,
        created_at=task.created_at,
    )
