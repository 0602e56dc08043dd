"""Small queries over rendered objects, shared by the deployment tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Objects = list[dict[str, Any]]


def of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def pod_templates(objects: Objects) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(owner, pod template) for every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "Job"):
            yield obj, obj["spec"]["template"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())
