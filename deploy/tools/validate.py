"""Validate rendered manifests offline: built-in kinds against the Kubernetes schemas, custom resources
against the CRD schemas kept in deploy/schemas/.

kubernetes-validate (``--strict``: unknown fields fail) checks every built-in object for the oldest and the
newest supported Kubernetes. Unlike its CLI, which only warns about kinds it has no schema for, a kind
with neither a Kubernetes schema nor a CRD schema here is an error: nothing reaches a cluster unchecked.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "deploy" / "schemas"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import KUBE_VERSIONS, OUT  # noqa: E402

#: apiVersion group -> CRD schema file prefix; the kind picks the file.
CRD_SCHEMAS = {
    ("keda.sh", "ScaledObject"): "keda.sh_scaledobject",
    ("monitoring.coreos.com", "ServiceMonitor"): "monitoring.coreos.com_servicemonitor",
    ("monitoring.coreos.com", "PrometheusRule"): "monitoring.coreos.com_prometheusrule",
    ("kafka.strimzi.io", "KafkaTopic"): "kafka.strimzi.io_kafkatopic",
}


@cache
def crd_validator(group: str, kind: str) -> jsonschema.protocols.Validator | None:
    name = CRD_SCHEMAS.get((group, kind))
    if name is None:
        return None
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def describe(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def problems_of(obj: dict[str, Any], kube_versions: Iterable[str] = KUBE_VERSIONS) -> list[str]:
    """Every schema violation of one object, each as one line."""
    group = str(obj.get("apiVersion", "")).partition("/")[0] if "/" in str(obj.get("apiVersion", "")) else ""
    validator = crd_validator(group, str(obj.get("kind")))
    if validator is not None:
        return [
            f"{describe(obj)}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
        ]
    out: list[str] = []
    for version in kube_versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path)) or "<root>"
            out.append(f"{describe(obj)} (k8s {version}): {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            out.append(
                f"{describe(obj)} (k8s {version}): no Kubernetes schema and no CRD schema in deploy/schemas"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "files", nargs="*", type=Path, help="rendered manifests (default: build/deploy/*.yaml)"
    )
    args = parser.parse_args(argv)
    files = args.files or sorted(OUT.glob("*.yaml"))
    if not files:
        print("nothing to validate: run deploy/tools/render.py first", file=sys.stderr)
        return 1
    failed = 0
    for path in files:
        objects = [o for o in yaml.safe_load_all(path.read_text(encoding="utf-8")) if o]
        problems = [p for obj in objects for p in problems_of(obj)]
        for problem in problems:
            print(f"{path.name}: {problem}", file=sys.stderr)
        failed += len(problems)
        print(
            f"{path.name}: {len(objects)} objects, k8s {' and '.join(KUBE_VERSIONS)} strict: {len(problems)} problems"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
