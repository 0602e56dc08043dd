"""Deployments and migration Jobs: probes, resources, security posture, shutdown budget, environment."""

from __future__ import annotations

from typing import Any

from manifests import Objects, env_of, of_kind, pod_templates

SERVICES = {
    # component: (console script, port)
    "channel-gateway": ("omni-gateway", 8080),
    "agent-presence": ("omni-presence", 8081),
    "identity-resolution": ("omni-identity", 8082),
    "routing": ("omni-routing", 8083),
}
RECOMMENDED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
)


def _deployments(objects: Objects) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["labels"]["app.kubernetes.io/name"]: d for d in of_kind(objects, "Deployment")}


def test_one_deployment_and_service_per_service(objects: Objects) -> None:
    deployments = _deployments(objects)
    assert set(deployments) == set(SERVICES)
    services = {s["metadata"]["name"]: s for s in of_kind(objects, "Service")}
    for component, deployment in deployments.items():
        service = services[deployment["metadata"]["name"]]
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
        assert service["spec"]["ports"] == [
            {"name": "http", "port": SERVICES[component][1], "targetPort": "http", "protocol": "TCP"}
        ]


def test_every_object_has_the_recommended_labels(objects: Objects) -> None:
    for obj in objects:
        labels = obj["metadata"].get("labels", {})
        missing = [k for k in RECOMMENDED_LABELS if k not in labels]
        assert not missing, f"{obj['kind']}/{obj['metadata']['name']} lacks {missing}"
        assert obj["metadata"]["namespace"] == "omnirouter"


def test_each_deployment_runs_its_service_with_three_probes(objects: Objects) -> None:
    for component, deployment in _deployments(objects).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        script, port = SERVICES[component]
        assert container["command"] == [script, "serve"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        # Start-up (restoring state, joining the group) gets far longer than liveness would allow.
        startup = container["startupProbe"]
        liveness = container["livenessProbe"]
        assert (
            startup["periodSeconds"] * startup["failureThreshold"]
            > liveness["periodSeconds"] * liveness["failureThreshold"]
        )


def test_requests_and_limits_everywhere(objects: Objects) -> None:
    for owner, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            resources = container["resources"]
            for section in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[section]), f"{owner['metadata']['name']} {section}"


def test_pods_are_non_root_read_only_and_unprivileged(objects: Objects) -> None:
    for owner, template in pod_templates(objects):
        name = owner["metadata"]["name"]
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] >= 10000, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), name
        tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, name
            assert sc["capabilities"] == {"drop": ["ALL"]}, name
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
            # A read-only root needs a writable /tmp (Python's tempfile, aiohttp uploads).
            assert any(
                m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"]
            )


def test_grace_period_covers_prestop_and_shutdown(objects: Objects) -> None:
    for deployment in of_kind(objects, "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        sleep = container["lifecycle"]["preStop"]["exec"]["command"]
        assert sleep[0] == "sleep"
        shutdown = float(env_of(container)["SHUTDOWN_TIMEOUT_S"]["value"])
        assert spec["terminationGracePeriodSeconds"] > shutdown + float(sleep[1]), deployment["metadata"][
            "name"
        ]


def test_environment_matches_the_services_settings(objects: Objects) -> None:
    for component, deployment in _deployments(objects).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = env_of(container)
        assert env["HTTP_PORT"]["value"] == str(SERVICES[component][1])
        assert env["LOG_FORMAT"]["value"] == "json"
        assert env["OMNI_SERVICE_NAME"]["value"] == component
        assert env["OMNI_INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert {"KAFKA_BOOTSTRAP_SERVERS", "OMNI_TOPIC_PREFIX", "OMNI_PUBLIC_URL", "OMNI_ADMIN_TOKEN"} <= set(
            env
        )
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"
        assert "value" not in env["OMNI_ADMIN_TOKEN"], "secrets come from a Secret, never from values"


def test_no_secret_value_is_rendered_into_a_manifest(objects: Objects) -> None:
    secretish = ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "SIGNING_KEY", "PUBLIC_KEY", "DATABASE_URL")
    assert not of_kind(objects, "Secret"), "the chart references existing Secrets, it never creates one"
    for _, template in pod_templates(objects):
        for container in template["spec"]["containers"]:
            for name, var in env_of(container).items():
                if any(word in name for word in secretish):
                    assert "secretKeyRef" in var.get("valueFrom", {}), name


def test_only_routing_mounts_the_routing_configuration(objects: Objects) -> None:
    for component, deployment in _deployments(objects).items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        if component == "routing":
            assert env_of(container)["ROUTING_CONFIG"]["value"] == "/etc/omnirouter/routing.yaml"
            # A directory mount, not subPath: ConfigMap updates reach the pod and routing reloads.
            assert "subPath" not in mounts["/etc/omnirouter"] and mounts["/etc/omnirouter"]["readOnly"]
        else:
            assert "/etc/omnirouter" not in mounts


def test_presence_finds_identity_and_routing(objects: Objects) -> None:
    deployments = _deployments(objects)
    (container,) = deployments["agent-presence"]["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    for var, component in (("IDENTITY_URL", "identity-resolution"), ("ROUTING_URL", "routing")):
        name = deployments[component]["metadata"]["name"]
        assert env[var]["value"] == f"http://{name}:{SERVICES[component][1]}"


def test_migrations_run_as_pre_install_and_pre_upgrade_hooks(objects: Objects) -> None:
    jobs = of_kind(objects, "Job")
    commands = sorted(job["spec"]["template"]["spec"]["containers"][0]["command"][0] for job in jobs)
    assert commands == sorted(script for script, _ in SERVICES.values())
    for job in jobs:
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["command"][1] == "migrate"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        # The hook runs before the chart's ConfigMap exists: the Job must not point at it.
        assert "ROUTING_CONFIG" not in env_of(container)


def test_rolling_updates_replace_one_pod_at_a_time(objects: Objects) -> None:
    for deployment in of_kind(objects, "Deployment"):
        rolling = deployment["spec"]["strategy"]["rollingUpdate"]
        assert rolling == {"maxUnavailable": 0, "maxSurge": 1}
