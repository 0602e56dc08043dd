"""Disruption budgets, autoscaling (HPA vs KEDA) and NetworkPolicies on the rendered chart."""

from __future__ import annotations

from typing import Any

from manifests import Objects, of_kind, pod_templates, selects

from omnirouter_shared.topics import TOPICS

PUBLIC = {"channel-gateway", "agent-presence"}
CONSUMER_GROUPS = {
    "channel-gateway": "channel-gateway-outbound",
    "agent-presence": "agent-presence",
    "identity-resolution": "identity-resolution",
    "routing": "routing",
}
PARTITIONS = {str(topic): spec.partitions for topic, spec in TOPICS.items()}


def _by_component(objects: Objects, kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["labels"]["app.kubernetes.io/name"]: o for o in of_kind(objects, kind)}


def test_every_deployment_has_a_pdb_of_max_one_unavailable(objects: Objects) -> None:
    pdbs = of_kind(objects, "PodDisruptionBudget")
    for deployment in of_kind(objects, "Deployment"):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        matching = [p for p in pdbs if selects(p["spec"]["selector"]["matchLabels"], labels)]
        assert len(matching) == 1, deployment["metadata"]["name"]
        assert matching[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": matching[0]["spec"]["selector"],
        }


def test_http_services_scale_on_cpu_and_consumers_on_lag(objects: Objects) -> None:
    hpas = _by_component(objects, "HorizontalPodAutoscaler")
    scaled = _by_component(objects, "ScaledObject")
    assert set(hpas) == PUBLIC
    assert set(scaled) == {"identity-resolution", "routing"}
    for hpa in hpas.values():
        (metric,) = hpa["spec"]["metrics"]
        assert metric["resource"]["name"] == "cpu"
        assert hpa["spec"]["minReplicas"] >= 2, "one replica left is no redundancy"


def test_no_deployment_has_both_an_hpa_and_a_scaledobject(objects: Objects) -> None:
    # KEDA creates its own HPA for a ScaledObject: a second HPA on the same Deployment would fight it.
    hpa_targets = [h["spec"]["scaleTargetRef"]["name"] for h in of_kind(objects, "HorizontalPodAutoscaler")]
    keda_targets = [s["spec"]["scaleTargetRef"]["name"] for s in of_kind(objects, "ScaledObject")]
    assert not set(hpa_targets) & set(keda_targets)
    assert len(hpa_targets + keda_targets) == len(set(hpa_targets + keda_targets))
    deployments = {d["metadata"]["name"]: d for d in of_kind(objects, "Deployment")}
    for target in hpa_targets + keda_targets:
        # An autoscaled Deployment leaves spec.replicas alone, or every upgrade would reset the scale.
        assert "replicas" not in deployments[target]["spec"]


def test_scaledobjects_watch_their_group_and_never_exceed_partitions(objects: Objects) -> None:
    for component, so in _by_component(objects, "ScaledObject").items():
        (trigger,) = so["spec"]["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka"
        assert meta["consumerGroup"] == CONSUMER_GROUPS[component]
        assert component in TOPICS_CONSUMED_BY[meta["topic"]]
        # A member beyond the partition count gets nothing and only adds rebalances.
        assert so["spec"]["maxReplicaCount"] <= PARTITIONS[meta["topic"]]
        assert meta.get("allowIdleConsumers") == "false"
        assert meta["offsetResetPolicy"] == "earliest", "must match the consumers' auto_offset_reset"
        assert int(meta["lagThreshold"]) > int(meta["activationLagThreshold"]) >= 0


TOPICS_CONSUMED_BY = {str(topic): set(spec.consumers) for topic, spec in TOPICS.items()}


def test_default_deny_then_one_policy_per_workload(objects: Objects) -> None:
    policies = of_kind(objects, "NetworkPolicy")
    (deny,) = [p for p in policies if p["metadata"]["name"].endswith("-default-deny")]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    for owner, template in pod_templates(objects):
        labels = template["metadata"]["labels"]
        assert selects(deny["spec"]["podSelector"]["matchLabels"], labels), owner["metadata"]["name"]
        allowing = [
            p for p in policies if p is not deny and selects(p["spec"]["podSelector"]["matchLabels"], labels)
        ]
        assert len(allowing) == 1, owner["metadata"]["name"]


def _policy_for(objects: Objects, component: str) -> dict[str, Any]:
    (deployment,) = [
        d
        for d in of_kind(objects, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/name"] == component
    ]
    (policy,) = [
        p
        for p in of_kind(objects, "NetworkPolicy")
        if p["metadata"]["name"] == deployment["metadata"]["name"]
    ]
    return policy


def test_only_gateway_and_presence_accept_traffic_from_anywhere(objects: Objects) -> None:
    for component in CONSUMER_GROUPS:
        ingress = _policy_for(objects, component)["spec"]["ingress"]
        open_rules = [rule for rule in ingress if "from" not in rule]
        if component in PUBLIC:
            assert open_rules == [{"ports": [{"port": "http", "protocol": "TCP"}]}]
        else:
            assert not open_rules, f"{component} is internal"
            sources = [peer for rule in ingress for peer in rule["from"]]
            assert any("namespaceSelector" in peer for peer in sources), "Prometheus must reach /metrics"


def test_egress_allows_dns_kafka_and_postgresql_only(objects: Objects) -> None:
    for component in CONSUMER_GROUPS:
        egress = _policy_for(objects, component)["spec"]["egress"]
        ports = {(p["port"], p["protocol"]) for rule in egress for p in rule["ports"]}
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP")} <= ports
        assert any(port in (9092, 9093) for port, _ in ports)
        allowed_extra = {443} if component in PUBLIC else set()
        if component == "agent-presence":
            allowed_extra |= {8082, 8083}
        assert {port for port, _ in ports} - {53, 5432, 9092, 9093} == allowed_extra, component


def test_migration_jobs_may_only_reach_dns_and_postgresql(objects: Objects) -> None:
    (policy,) = [p for p in of_kind(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-migrate")]
    assert "ingress" not in policy["spec"] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
    assert ports == {53, 5432}


def test_production_profile_pins_peers_for_kafka_and_postgresql(production: Objects) -> None:
    for component in CONSUMER_GROUPS:
        egress = _policy_for(production, component)["spec"]["egress"]
        for rule in egress:
            ports = {p["port"] for p in rule["ports"]}
            if ports & {9093, 5432}:
                assert rule["to"], f"{component}: Kafka/PostgreSQL egress must name its peers"
