"""deploy/ as shipped: the Kubernetes manifests against the Kubernetes schemas (bundled
with kubernetes-validate, no network), the Dockerfile's shape, the compose file's wiring, the
alert rules' and the dashboard's structure. (Running the compose services and TURN is in
tests/integration/test_deploy_compose.py and test_turn_relay.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = "1.30.0"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


def manifests() -> list[tuple[str, dict[str, Any]]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return [(name, doc) for name in kustomization["resources"] for doc in documents(K8S / name)]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize(("name", "doc"), manifests(), ids=lambda x: x if isinstance(x, str) else x["kind"])
def test_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{name} {doc['kind']}: {str(error).splitlines()[0]} at {list(error.path)}")


def kinds() -> dict[str, dict[str, Any]]:
    return {f"{doc['kind']}/{doc['metadata']['name']}": doc for _, doc in manifests()}


def test_live_nodes_probe_ready_and_run_unprivileged() -> None:
    node = kinds()["StatefulSet/live"]
    pod = node["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["LIVE_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/live"] == "data"  # the spool survives a restart
    assert mounts["/run/secrets"] == "secrets"


def test_ingress_reaches_the_service_with_long_lived_websockets() -> None:
    ingress, service = kinds()["Ingress/live"], kinds()["Service/live"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "live"
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert int(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert ingress["spec"]["tls"]


def test_turn_is_on_the_host_network_with_udp() -> None:
    turn = kinds()["Deployment/coturn"]["spec"]["template"]["spec"]
    assert turn["hostNetwork"] is True
    (container,) = turn["containers"]
    assert {"UDP", "TCP"} == {p["protocol"] for p in container["ports"] if p["containerPort"] == 3478}
    args = " ".join(container["args"])
    assert "--denied-peer-ip=0.0.0.0-255.255.255.255" in args and "--allowed-peer-ip=" in args


def dockerfile_stages() -> list[list[str]]:
    """Instructions (continuation lines joined) per stage."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_a_readiness_healthcheck() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    final = stages[-1]
    assert any(i.startswith("COPY --from=build") for i in final)
    users = [i.split()[1] for i in final if i.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [i for i in final if i.startswith("HEALTHCHECK ")]
    assert len(healthchecks) == 1 and "/readyz" in healthchecks[0]
    assert 'ENTRYPOINT ["docker-entrypoint.sh"]' in final
    assert not any(i.startswith("ADD ") for stage in stages for i in stage)
    assert all("slim" in stage[0] or "${PYTHON_IMAGE}" in stage[0] for stage in stages)


def test_compose_runs_two_nodes_behind_a_tls_proxy_with_file_secrets() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"live-1", "live-2", "redis", "postgres", "coturn", "caddy"} <= set(services)
    assert services["live-1"]["environment"]["LIVE_NODE_ID"] != services["live-2"]["environment"]["LIVE_NODE_ID"]
    for name in ("live-1", "live-2"):
        environment = services[name]["environment"]
        assert not any("SECRET" in key or "PASSWORD" in key for key in environment), environment
        assert "live_session_secret" in services[name]["secrets"]
    assert all("file" in secret for secret in compose["secrets"].values())
    # Only the proxy and TURN are published; the nodes, Redis and PostgreSQL are not.
    assert {name for name, s in services.items() if s.get("ports")} == {"caddy", "coturn"}
    trusted = services["live-1"]["environment"]["LIVE_TRUSTED_PROXIES"]
    assert services["caddy"]["networks"]["live"]["ipv4_address"] == trusted
    caddyfile = (DEPLOY / "compose" / "Caddyfile").read_text()
    assert "reverse_proxy live-1:8080 live-2:8080" in caddyfile and "health_uri /readyz" in caddyfile


def test_alert_rules_cover_what_an_operator_must_know() -> None:
    rules = yaml.safe_load((DEPLOY / "monitoring" / "prometheus-alerts.yaml").read_text())
    alerts = {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}
    for rule in alerts.values():
        assert rule["expr"].strip() and rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
    watched = {name: alerts[name]["expr"] for name in
               ("LiveLedgerUnavailable", "LiveSpoolBacklog", "LiveListenerLoss", "LiveBusDisconnected")}
    assert "live_ledger_writable" in watched["LiveLedgerUnavailable"]
    assert "live_ledger_spooled" in watched["LiveSpoolBacklog"]
    assert "live_packets_dropped_total" in watched["LiveListenerLoss"]
    assert "live_bus_connected" in watched["LiveBusDisconnected"]


def test_dashboard_panels_query_prometheus() -> None:
    dashboard = json.loads((DEPLOY / "monitoring" / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert all(t["expr"] and t["refId"] for t in panel["targets"])
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
