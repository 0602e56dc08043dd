"""Write the Helm chart's ``topics`` values from the topic registry (shared/omnirouter_shared/topics.py).

The registry is the single source of truth for names, partitions, clean-up policy and retention; the chart
renders one Strimzi KafkaTopic per entry. Run it after changing the registry; ``--check`` (used by
``make deploy-check``) fails when the chart is out of date instead of writing.

The block is keyed by a slug (``routing-inbox``) rather than a list so an operator can override one
topic's partitions or retention in their own values file (Helm merges maps, but replaces lists).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "deploy" / "helm" / "omnirouter" / "values.yaml"
BEGIN = "# BEGIN GENERATED TOPICS"
END = "# END GENERATED TOPICS"


def registry_topics() -> dict[str, dict[str, object]]:
    """The registry as chart values: ``{slug: {name, partitions, config}}``."""
    # topics.py imports nothing but the standard library, so the deploy venv can read it without the app.
    sys.path.insert(0, str(ROOT / "shared"))
    from omnirouter_shared.topics import TOPICS

    out: dict[str, dict[str, object]] = {}
    for topic, spec in TOPICS.items():
        slug = topic.name.lower().replace("_", "-")
        out[slug] = {
            "name": str(topic.value),
            "partitions": spec.partitions,
            "config": dict(sorted(spec.topic_config().items())),
        }
    return out


def render_block(topics: dict[str, dict[str, object]]) -> str:
    body = yaml.safe_dump({"topics": topics}, sort_keys=False, default_flow_style=False, width=110)
    return f"{BEGIN} (deploy/tools/gen_topics.py from shared/omnirouter_shared/topics.py; do not edit)\n{body}{END}\n"


def updated_values(text: str, block: str) -> str:
    start = text.index(BEGIN)
    end = text.index(END, start) + len(END)
    # Swallow the newline after the END marker: the block carries its own.
    if text[end : end + 1] == "\n":
        end += 1
    return text[:start] + block + text[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if values.yaml is out of date")
    args = parser.parse_args(argv)
    current = VALUES.read_text(encoding="utf-8")
    wanted = updated_values(current, render_block(registry_topics()))
    if current == wanted:
        print("chart topics are in sync with the registry")
        return 0
    if args.check:
        print(
            f"{VALUES.relative_to(ROOT)} is out of date: run python deploy/tools/gen_topics.py",
            file=sys.stderr,
        )
        return 1
    VALUES.write_text(wanted, encoding="utf-8")
    print(f"wrote {len(registry_topics())} topics to {VALUES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
