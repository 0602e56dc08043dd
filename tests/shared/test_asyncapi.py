from __future__ import annotations

from pathlib import Path

import yaml

from omnirouter_shared.asyncapi import build, render
from omnirouter_shared.topics import TOPICS

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"


def test_committed_asyncapi_matches_the_code() -> None:
    assert DOC.read_text() == render(), (
        "regenerate: python -m omnirouter_shared.asyncapi > docs/asyncapi.yaml"
    )


def test_every_topic_and_message_reference_resolves() -> None:
    doc = yaml.safe_load(render())
    assert {c["address"] for c in doc["channels"].values()} == {s.topic.value for s in TOPICS.values()}
    messages = doc["components"]["messages"]
    schemas = doc["components"]["schemas"]
    for channel in doc["channels"].values():
        for ref in channel["messages"].values():
            assert ref["$ref"].rsplit("/", 1)[1] in messages

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref" and isinstance(v, str)] + [
                r for v in node.values() for r in refs(v)
            ]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        kind, name = ref.split("/")[-2:]
        assert name in {"schemas": schemas, "messages": messages, "channels": doc["channels"]}[kind], ref
    assert build()["asyncapi"] == "3.0.0"
