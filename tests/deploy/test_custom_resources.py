"""Strimzi topics against the registry; every custom resource against its CRD schema in deploy/schemas."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import gen_topics
import pytest
import validate
from manifests import Objects, of_kind

from omnirouter_shared.topics import TOPICS


def test_chart_topics_are_in_sync_with_the_registry() -> None:
    assert gen_topics.main(["--check"]) == 0, "run: python deploy/tools/gen_topics.py"


def test_one_kafkatopic_per_registry_topic(production: Objects) -> None:
    topics = {t["spec"]["topicName"]: t for t in of_kind(production, "KafkaTopic")}
    assert set(topics) == {str(topic) for topic in TOPICS}
    for topic, spec in TOPICS.items():
        rendered = topics[str(topic)]
        assert rendered["metadata"]["labels"]["strimzi.io/cluster"] == "omnirouter"
        assert rendered["spec"]["partitions"] == spec.partitions
        config = rendered["spec"]["config"]
        assert config["cleanup.policy"] == spec.cleanup_policy
        assert config.get("retention.ms") == (None if spec.retention_ms is None else str(spec.retention_ms))
        # With three replicas, acks=all survives one broker down without losing acknowledged writes.
        assert rendered["spec"]["replicas"] == 3 and config["min.insync.replicas"] == "2"
        # Uninstalling the release must not delete the event log.
        assert rendered["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_topic_prefix_applies_to_topics_and_lag_triggers(
    render_values: Callable[[dict[str, Any]], Objects],
) -> None:
    objects = render_values({"kafka": {"topicPrefix": "acme."}, "strimzi": {"enabled": True}})
    assert all(t["spec"]["topicName"].startswith("acme.omni.") for t in of_kind(objects, "KafkaTopic"))
    for so in of_kind(objects, "ScaledObject"):
        assert so["spec"]["triggers"][0]["metadata"]["topic"].startswith("acme.omni.")


def test_every_object_passes_its_schema(objects: Objects) -> None:
    problems = [p for obj in objects for p in validate.problems_of(obj)]
    assert not problems, "\n".join(problems)


def test_crd_schemas_reject_what_the_api_server_would_reject(production: Objects) -> None:
    (so,) = of_kind(production, "ScaledObject")[:1]
    bad = copy.deepcopy(so)
    # Trigger metadata is map[string]string: an unquoted number is a classic Helm mistake.
    bad["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 500
    assert any("lagThreshold" in p for p in validate.problems_of(bad))
    (topic,) = of_kind(production, "KafkaTopic")[:1]
    unlabelled = copy.deepcopy(topic)
    del unlabelled["metadata"]["labels"]["strimzi.io/cluster"]
    assert validate.problems_of(unlabelled)
    (rule,) = of_kind(production, "PrometheusRule")
    bad_rule = copy.deepcopy(rule)
    bad_rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    assert validate.problems_of(bad_rule)


def test_kubernetes_schemas_are_strict(default: Objects) -> None:
    (deployment,) = of_kind(default, "Deployment")[:1]
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/healthz"}}
    problems = validate.problems_of(typo)
    assert len(problems) == len(validate.KUBE_VERSIONS) and all("livenesProbe" in p for p in problems)


def test_an_unknown_kind_is_an_error_not_a_warning() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    assert validate.problems_of(obj)


@pytest.mark.parametrize(
    "kind", ["ServiceMonitor", "PrometheusRule", "KafkaTopic", "ScaledObject", "ConfigMap"]
)
def test_optional_objects_are_behind_values_flags(default: Objects, production: Objects, kind: str) -> None:
    # Render cannot see the cluster's CRDs (.Capabilities): operator objects are opt-in in values.
    if kind == "ScaledObject":
        assert of_kind(default, kind) and of_kind(production, kind)
    elif kind == "ConfigMap":
        assert len(of_kind(production, kind)) == len(of_kind(default, kind)) + 1  # + the dashboard
    else:
        assert not of_kind(default, kind) and of_kind(production, kind)
