"""The image, the compose file, the dashboard and the alert rules, as shipped."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifests import Objects, env_of, of_kind

ROOT = Path(__file__).resolve().parents[2]
CHART_FILES = ROOT / "deploy" / "helm" / "omnirouter" / "files"
COMPOSE_SERVICES = {
    "channel-gateway": "omni-gateway",
    "agent-presence": "omni-presence",
    "identity-resolution": "omni-identity",
    "routing": "omni-routing",
}


def _dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_is_multi_stage_pinned_non_root_and_exec_form() -> None:
    instructions = _dockerfile()
    froms = [arg for op, arg in instructions if op == "FROM"]
    assert len(froms) >= 3, "uv, builder and runtime stages"
    for image in froms:
        ref = image.split()[0]
        assert re.search(r":[0-9][\w.-]*$|@sha256:[0-9a-f]{64}$", ref), (
            f"{ref} is not pinned to an exact version"
        )
    runs = " ".join(arg for op, arg in instructions if op == "RUN")
    assert "uv sync --locked --no-dev" in runs
    (user,) = [arg for op, arg in instructions if op == "USER"]
    assert int(user.split(":")[0]) >= 10000
    (cmd,) = [arg for op, arg in instructions if op == "CMD"]
    assert json.loads(cmd)[0] == "omni-gateway", "exec form: the service is PID 1 and gets SIGTERM"
    assert any(op == "HEALTHCHECK" for op, _ in instructions)
    # The runtime stage starts from the base image again: no compiler, no uv, no sources.
    runtime = instructions[[i for i, (op, _) in enumerate(instructions) if op == "FROM"][-1] :]
    assert not any("uv " in arg for op, arg in runtime if op == "RUN")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    docker_compose = Path(sys.executable).parent / "docker-compose"
    out = subprocess.run(
        [str(docker_compose), "-f", str(ROOT / "docker-compose.yml"), "config", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    config: dict[str, Any] = json.loads(out.stdout)
    return config


def test_compose_runs_the_suite_with_kafka_kraft_postgres_and_monitoring(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "postgres", "init", "prometheus", "grafana", *COMPOSE_SERVICES} <= set(services)
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"
    init = " ".join(services["init"]["command"])
    assert all(f"{script} migrate" in init for script in COMPOSE_SERVICES.values())
    assert "ensure_topics" in init
    for name, script in COMPOSE_SERVICES.items():
        service = services[name]
        assert service["command"] == [script, "serve"]
        assert service["depends_on"]["init"]["condition"] == "service_completed_successfully"
        assert service["read_only"] is True and service["user"] == "10001:10001"


def test_compose_and_kubernetes_set_the_same_variables(compose: dict[str, Any], default: Objects) -> None:
    k8s_only = {"OMNI_SERVICE_NAME", "OMNI_INSTANCE_ID"}  # the process defaults are right in compose
    for deployment in of_kind(default, "Deployment"):
        component = deployment["metadata"]["labels"]["app.kubernetes.io/name"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        k8s = {
            name
            for name, var in env_of(container).items()
            if not var.get("valueFrom", {}).get("secretKeyRef")
        }
        k8s |= {"DATABASE_URL"}
        compose_env = set(compose["services"][component]["environment"])
        assert k8s - k8s_only <= compose_env, f"{component}: {sorted(k8s - k8s_only - compose_env)}"


def test_compose_mounts_the_charts_dashboard_and_rules(compose: dict[str, Any]) -> None:
    mounts = [
        (Path(v["source"]).resolve(), v["target"])
        for name in ("prometheus", "grafana")
        for v in compose["services"][name]["volumes"]
        if v["type"] == "bind"
    ]
    assert (CHART_FILES.resolve() / "alerts.yml", "/etc/prometheus/rules/alerts.yml") in mounts
    assert (CHART_FILES.resolve() / "dashboards", "/var/lib/grafana/dashboards") in mounts


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((CHART_FILES / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _operations_anchors() -> set[str]:
    text = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+\s+(.+)$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-") for h in headings}


def test_every_alert_has_severity_summary_and_an_existing_runbook() -> None:
    anchors = _operations_anchors()
    rules = _alert_rules()
    assert len(rules) >= 8
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        anchor = rule["annotations"]["runbook_url"].split("docs/operations.md#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: no heading #{anchor} in docs/operations.md"
    names = {rule["alert"] for rule in rules}
    assert {"OmnirouterConsumerLagHigh", "OmnirouterDeadLetters", "OmnirouterQueueStuck"} <= names


def test_prometheus_rule_is_the_shipped_rule_file(production: Objects) -> None:
    (rule,) = of_kind(production, "PrometheusRule")
    shipped = yaml.safe_load((CHART_FILES / "alerts.yml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == shipped["groups"]


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(omni_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{\[(\s)]|$)", expr))


def test_dashboard_covers_queues_service_level_latency_lag_and_errors(production: Objects) -> None:
    dashboard = json.loads((CHART_FILES / "dashboards" / "omnirouter.json").read_text(encoding="utf-8"))
    rows = {p["title"] for p in dashboard["panels"] if p["type"] == "row"}
    assert rows == {"Queues and service level", "Latency", "Kafka", "Errors"}
    exprs = [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    metrics = set().union(*(_metric_names(e) for e in exprs))
    for needed in (
        "omni_routing_queue_waiting",
        "omni_routing_queue_service_level",
        "omni_http_request_seconds",
        "omni_consumer_lag",
        "omni_events_dead_lettered_total",
    ):
        assert needed in metrics, needed
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    (configmap,) = [
        c for c in of_kind(production, "ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert json.loads(configmap["data"]["omnirouter.json"]) == dashboard


def test_dashboard_and_alerts_use_only_the_omni_metric_namespace() -> None:
    dashboard = json.loads((CHART_FILES / "dashboards" / "omnirouter.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]
    exprs += [rule["expr"] for rule in _alert_rules()]
    for expr in exprs:
        assert _metric_names(expr), f"no omni_ metric in {shlex.quote(expr)}"


def test_routing_configmap_is_the_example_configuration(default: Objects) -> None:
    (configmap,) = [
        c for c in of_kind(default, "ConfigMap") if c["metadata"]["name"].endswith("-routing-config")
    ]
    example = (ROOT / "deploy" / "config" / "routing.yaml").read_text(encoding="utf-8")
    assert configmap["data"]["routing.yaml"].strip() == example.strip()
