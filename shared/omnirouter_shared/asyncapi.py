"""Generate docs/asyncapi.yaml (AsyncAPI 3.0) from the topic registry and the payload models, so the
document can never drift from the code: `python -m omnirouter_shared.asyncapi > docs/asyncapi.yaml`
(a test fails when the committed file differs)."""

from __future__ import annotations

import sys
from typing import Any

import yaml
from pydantic import BaseModel

from omnirouter_shared.contracts.envelope import Envelope
from omnirouter_shared.contracts.registry import EVENT_TYPES
from omnirouter_shared.topics import TOPICS

_SERVICES = ("channel-gateway", "identity-resolution", "routing", "agent-presence")


def _message_name(event_type: str, version: int) -> str:
    return f"{event_type.replace('.', '_')}_v{version}"


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template="#/components/schemas/{model}")


def build() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def add_schema(model: type[BaseModel]) -> None:
        s = _schema(model)
        for name, sub in s.pop("$defs", {}).items():
            schemas.setdefault(name, sub)
        schemas[model.__name__] = s

    env = Envelope.model_json_schema(ref_template="#/components/schemas/{model}")
    env.pop("$defs", None)
    schemas["Envelope"] = env
    for (event_type, version), model in sorted(EVENT_TYPES.items()):
        add_schema(model)
        messages[_message_name(event_type, version)] = {
            "name": event_type,
            "title": f"{event_type} v{version}",
            "summary": (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "),
            "contentType": "application/json",
            "payload": {
                "allOf": [
                    {"$ref": "#/components/schemas/Envelope"},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": event_type},
                            "schema_version": {"const": version},
                            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                        },
                    },
                ]
            },
        }

    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in TOPICS.values():
        cid = spec.topic.value.replace(".", "_")
        known = [e for e in spec.events if any(t == e for t, _ in EVENT_TYPES)]
        channels[cid] = {
            "address": spec.topic.value,
            "description": (
                f"{spec.description}\n\nKey: {spec.key}. Partitions: {spec.partitions}. "
                f"Clean-up policy: {spec.cleanup_policy}"
                + (f", retention {spec.retention_ms // 86_400_000} days" if spec.retention_ms else "")
                + f".\nProducers: {', '.join(spec.producers)}. Consumers: {', '.join(spec.consumers) or 'operators'}."
            ),
            "messages": {
                _message_name(e, v): {"$ref": f"#/components/messages/{_message_name(e, v)}"}
                for (e, v) in sorted(EVENT_TYPES)
                if e in known
            },
            "bindings": {
                "kafka": {
                    "topic": spec.topic.value,
                    "partitions": spec.partitions,
                    "topicConfiguration": {"cleanup.policy": [spec.cleanup_policy]}
                    | ({"retention.ms": spec.retention_ms} if spec.retention_ms else {}),
                }
            },
        }
        for producer in spec.producers:
            operations[f"{producer.replace('-', '_')}_sends_{cid}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"{producer} publishes to {spec.topic.value}",
            }
        for consumer in spec.consumers:
            operations[f"{consumer.replace('-', '_')}_receives_{cid}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"{consumer} consumes {spec.topic.value}",
                "bindings": {"kafka": {"groupId": {"type": "string", "enum": [consumer]}}},
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Omnirouter events",
            "version": "1.0.0",
            "description": (
                "Every topic the Omnirouter services exchange, with its key, partitions, clean-up policy, "
                "producers and consumers. Every message is a JSON Envelope whose `payload` is the event named "
                "by `type` and `schema_version`. Consumers ignore unknown fields; a breaking change gets a new "
                "schema_version, and both versions are consumed during an upgrade. Generated from "
                "shared/omnirouter_shared/topics.py and contracts/: do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "production": {"host": "kafka:9092", "protocol": "kafka", "description": "Apache Kafka"},
            "embedded": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "make run (Tansu)"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def render() -> str:
    return yaml.safe_dump(build(), sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
