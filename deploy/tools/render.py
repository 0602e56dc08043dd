"""Lint and render the Helm chart offline (Helm's Go SDK through helm-python-sdk; no helm binary, no cluster).

Each values profile (the chart's defaults, and every file in the chart's ci/ folder) is linted with
``strict=True`` for the oldest and newest supported Kubernetes versions, then rendered as an install to
``build/deploy/<profile>.yaml`` for kubernetes-validate and checkov. tests/deploy imports
:func:`render_profile` to assert on the same objects.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "omnirouter"
OUT = ROOT / "build" / "deploy"
RELEASE = "omni"
NAMESPACE = "omnirouter"
#: Oldest and newest Kubernetes the chart supports (Chart.yaml kubeVersion is the lower bound).
KUBE_VERSIONS = ("1.30.0", "1.37.0")


def profiles() -> dict[str, dict[str, Any]]:
    """Profile name -> values overrides: ``default`` plus one per ci/*.yaml."""
    out: dict[str, dict[str, Any]] = {"default": {}}
    for path in sorted((CHART / "ci").glob("*-values.yaml")):
        out[path.name.removesuffix("-values.yaml")] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return out


def lint(values: dict[str, Any]) -> list[str]:
    """Problems (warnings and errors; strict) for every supported Kubernetes version."""
    problems: list[str] = []
    for kube in KUBE_VERSIONS:
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{kube}")
        problems += [f"k8s {kube}: {e}" for e in report.get("errors") or []]
        # Severity 1 is informational ("icon is recommended"); 2 and 3 are warnings and errors.
        problems += [
            f"k8s {kube}: {m['path']}: {m['error']}"
            for m in report.get("messages") or []
            if m["severity"] >= 2
        ]
    return problems


def render_profile(values: dict[str, Any], *, upgrade: bool = False) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values``, in template order."""
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        manifests = chart.render(
            values, name=RELEASE, namespace=NAMESPACE, is_install=not upgrade, is_upgrade=upgrade
        )
    objects: list[dict[str, Any]] = []
    for template in sorted(manifests):
        if not template.endswith(".yaml"):
            continue
        objects += [doc for doc in yaml.safe_load_all(manifests[template]) if doc]
    return objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    # Route Helm's logs through Python logging at WARNING: the chart's example routing config is a
    # symlink into deploy/config, which Helm reports at INFO on every load.
    logging.basicConfig(level=logging.WARNING, format="helm: %(message)s")
    helm.enable_logging(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for name, values in profiles().items():
        problems = lint(values)
        for problem in problems:
            print(f"helm lint [{name}]: {problem}", file=sys.stderr)
        failed |= bool(problems)
        objects = render_profile(values)
        target = args.out / f"{name}.yaml"
        target.write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
        kinds = sorted({o["kind"] for o in objects})
        print(f"{name}: {len(objects)} objects ({', '.join(kinds)}) -> {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
