"""Values the chart refuses: a strict schema and render-time checks catch unsafe settings before a cluster."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import helm_python as helm
import pytest
from manifests import Objects

Render = Callable[[dict[str, Any]], Objects]


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"gateway": {"replicas": 3}}, id="misspelled key"),
        pytest.param({"routing": {"autoscaling": {"mode": "both"}}}, id="hpa and keda together"),
        pytest.param({"securityContext": {"readOnlyRootFilesystem": False}}, id="writable root"),
        pytest.param({"podSecurityContext": {"runAsUser": 0}}, id="root user"),
        pytest.param({"image": {"digest": "latest"}}, id="digest that is not one"),
        pytest.param({"gateway": {"secretEnv": [{"name": "twilio-token"}]}}, id="bad variable name"),
    ],
)
def test_schema_rejects(render_values: Render, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        render_values(values)


def test_keda_max_replicas_beyond_partitions_fails(render_values: Render) -> None:
    with pytest.raises(helm.HelmError, match="exceeds the 6 partitions of omni.routing.inbox"):
        render_values({"routing": {"autoscaling": {"maxReplicas": 7}}})


def test_grace_period_shorter_than_drain_fails(render_values: Render) -> None:
    with pytest.raises(helm.HelmError, match="must exceed shutdownTimeoutSeconds"):
        render_values({"presence": {"terminationGracePeriodSeconds": 20}})


def test_switching_a_consumer_to_hpa_removes_its_scaledobject(render_values: Render) -> None:
    objects = render_values({"routing": {"autoscaling": {"mode": "hpa"}}})
    names = {(o["kind"], o["metadata"]["labels"]["app.kubernetes.io/name"]) for o in objects}
    assert ("HorizontalPodAutoscaler", "routing") in names
    assert ("ScaledObject", "routing") not in names


def test_fixed_replicas_without_autoscaling(render_values: Render) -> None:
    objects = render_values({"identity": {"autoscaling": {"mode": "none"}, "replicaCount": 3}})
    (deployment,) = [
        o
        for o in objects
        if o["kind"] == "Deployment"
        and o["metadata"]["labels"]["app.kubernetes.io/name"] == "identity-resolution"
    ]
    assert deployment["spec"]["replicas"] == 3


def test_an_existing_configmap_replaces_the_example(render_values: Render) -> None:
    objects = render_values({"routingConfig": {"existingConfigMap": "acme-routing"}})
    assert not [o for o in objects if o["kind"] == "ConfigMap"]
    (routing,) = [
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-routing")
    ]
    volumes = {v["name"]: v for v in routing["spec"]["template"]["spec"]["volumes"]}
    assert volumes["routing-config"]["configMap"]["name"] == "acme-routing"


def test_disabled_service_renders_nothing(render_values: Render) -> None:
    objects = render_values({"presence": {"enabled": False}})
    assert not [
        o
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "agent-presence"
    ]
