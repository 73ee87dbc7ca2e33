"""Policy tests for the Kubernetes manifests under deploy/ (rendered with `kubectl kustomize`).

No skips: without kubectl these tests fail with the reason, because a CI that cannot build the
overlays has not checked them.
"""

from __future__ import annotations

import copy
import ipaddress
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy

OVERLAYS = ("dev", "prod", "external-db")
CNPG_OVERLAYS = ("dev", "prod")
GRPC_PORTS = {"session": 50051, "billing": 50052, "keys": 50053}
SERVICES = ("gateway", *GRPC_PORTS)
METRICS_PORTS = {"gateway": 9101, "session": 9102, "billing": 9103, "keys": 9104}
MIGRATIONS = tuple(f"migrate-{s}" for s in SERVICES)
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}

# The calls the code makes, as (source, destination, port, protocol). Pod names are the
# app.kubernetes.io/component label; "postgres" is the CloudNativePG instance pods; "outside" is any
# source; "internet" is 0.0.0.0/0 minus private ranges; "kube-dns" is kube-system/k8s-app=kube-dns.
APP_CALLS: set[tuple[str, str, int, str]] = {
    ("ingress-controller", "gateway", 8080, "TCP"),
    ("gateway", "session", 50051, "TCP"),
    ("gateway", "billing", 50052, "TCP"),
    ("gateway", "keys", 50053, "TCP"),
    ("session", "billing", 50052, "TCP"),
    ("session", "keys", 50053, "TCP"),
    ("keys", "session", 50051, "TCP"),  # customer_key.revoked -> RecordMerchantEvent
    ("billing", "session", 50051, "TCP"),  # credit_note.issued -> RecordMerchantEvent
    ("gateway", "internet", 443, "TCP"),  # Stripe API, One.com API (policy gateway-provider-egress)
    *(("monitoring", svc, port, "TCP") for svc, port in METRICS_PORTS.items()),
    ("gateway", "internet", 587, "TCP"),  # SMTP submission: the portal's contact form
    ("gateway", "internet", 25, "TCP"),  # SMTP relay
    ("session", "internet", 587, "TCP"),  # SMTP submission
    ("session", "internet", 25, "TCP"),  # SMTP relay
    ("session", "internet", 443, "TCP"),  # merchant webhook endpoints (policy session-webhook-egress)
    *((pod, "kube-dns", 53, proto) for pod in SERVICES + MIGRATIONS for proto in ("UDP", "TCP")),
}
CNPG_CALLS: set[tuple[str, str, int, str]] = {
    *((pod, "postgres", 5432, "TCP") for pod in SERVICES + MIGRATIONS),
    ("postgres", "postgres", 5432, "TCP"),  # streaming replication
    ("postgres", "postgres", 8000, "TCP"),  # instance manager
    ("monitoring", "postgres", 9187, "TCP"),  # CNPG's exporter
    ("cnpg-operator", "postgres", 5432, "TCP"),
    ("cnpg-operator", "postgres", 8000, "TCP"),
    ("postgres", "kube-dns", 53, "UDP"),
    ("postgres", "kube-dns", 53, "TCP"),
    ("postgres", "anywhere", 443, "TCP"),  # Kubernetes API server (address differs per cluster)
    ("postgres", "anywhere", 6443, "TCP"),
}
EXTERNAL_DB_CALLS = {(pod, "cidr:192.0.2.10/32", 5432, "TCP") for pod in SERVICES + MIGRATIONS}
# The pods that talk to a chain's JSON-RPC node: the gateway (watcher, verification, web3 routes) and the
# session service (the payment-settings probe). Nothing else does (grep PAYGATE_CHAIN_RPC_URL, chain_config).
CHAIN_CLIENTS = ("gateway", "session")
RELEASE_OVERLAYS = ("prod", "external-db")


def chain_cidr(overlay: str) -> str:
    """The chain node's CIDR as the overlay sets it, in its one place (components/chain-rpc-egress)."""
    config = yaml.safe_load((check_deploy.OVERLAYS_DIR / overlay / "chain-rpc-egress.yaml").read_text())
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "chain-rpc-egress"
    return str(config["data"]["cidr"])


def chain_calls(overlay: str) -> set[tuple[str, str, int, str]]:
    return {(pod, f"cidr:{chain_cidr(overlay)}", 443, "TCP") for pod in CHAIN_CLIENTS}


EXPECTED_CALLS = {
    "dev": APP_CALLS | CNPG_CALLS | chain_calls("dev"),
    "prod": APP_CALLS | CNPG_CALLS | chain_calls("prod"),
    "external-db": APP_CALLS | EXTERNAL_DB_CALLS | chain_calls("external-db"),
}


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    try:
        return tuple(check_deploy.build_overlay(overlay))
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def component(obj: dict[str, Any]) -> str:
    return obj["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def workloads(overlay: str) -> list[dict[str, Any]]:
    return of_kind(overlay, "Deployment") + of_kind(overlay, "Job")


# --- workload hardening ---------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_has_a_deployment_service_hpa_pdb_and_migration_job(overlay: str) -> None:
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered(overlay)}
    for svc in SERVICES:
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
            assert (kind, f"paygate-{svc}") in names, f"{overlay}: missing {kind} paygate-{svc}"
        assert ("Job", f"paygate-migrate-{svc}-{release(overlay)}") in names


def release(overlay: str) -> str:
    (namespace,) = of_kind(overlay, "Namespace")
    return namespace["metadata"]["labels"]["paygate.dev/release"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migration_jobs_are_named_per_release(overlay: str) -> None:
    """Jobs are immutable: the next release must create Jobs of its own, not collide with the finished ones."""
    value = release(overlay)
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", value), (
        f"{overlay}: release {value!r} is no DNS label"
    )
    jobs = of_kind(overlay, "Job")
    assert {job["metadata"]["name"] for job in jobs} == {f"paygate-migrate-{svc}-{value}" for svc in SERVICES}
    for job in jobs:
        # A DNS label, so the pods' host names are their names (a Job name may be a subdomain, but then not).
        assert len(job["metadata"]["name"]) <= 63, job["metadata"]["name"]
        assert job["spec"]["template"]["metadata"]["labels"]["paygate.dev/release"] == value
    for obj in rendered(overlay):
        assert obj["metadata"].get("labels", {}).get("paygate.dev/release") == value, (
            check_deploy.object_name(obj)
        )
    for dep in of_kind(overlay, "Deployment"):
        assert dep["spec"]["template"]["metadata"]["labels"]["paygate.dev/release"] == value
        # Never in a selector: a Deployment's selector is immutable, and a release must roll the same pods.
        assert "paygate.dev/release" not in dep["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workloads_are_hardened(overlay: str) -> None:
    for obj in workloads(overlay):
        name = check_deploy.object_name(obj)
        pod = obj["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in sc["capabilities"], name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources[bound].keys(), f"{name}: {bound}"
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts.get("/tmp") in tmp_volumes, f"{name}: /tmp must be an emptyDir"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_deployments_have_probes_grace_and_spread(overlay: str) -> None:
    for dep in of_kind(overlay, "Deployment"):
        svc = component(dep)
        pod = dep["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == [svc], "the image entrypoint is `paygate serve`; args pick the service"
        for probe in ("readinessProbe", "livenessProbe"):
            if svc == "gateway":
                path = "/readyz" if probe == "readinessProbe" else "/healthz"
                assert container[probe]["httpGet"]["path"] == path
            else:
                assert "grpc" in container[probe], f"{svc}: {probe} must be a native gRPC probe"
                served = {p["containerPort"] for p in container["ports"]}
                assert container[probe]["grpc"]["port"] in served
        assert pod["terminationGracePeriodSeconds"] >= 30
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert {"kubernetes.io/hostname", "topology.kubernetes.io/zone"} <= keys
        for c in pod["topologySpreadConstraints"]:
            assert c["labelSelector"]["matchLabels"]["app.kubernetes.io/component"] == svc


@pytest.mark.parametrize("overlay", ("prod", "external-db"))
def test_prod_runs_at_least_two_replicas(overlay: str) -> None:
    for dep in of_kind(overlay, "Deployment"):
        assert dep["spec"]["replicas"] >= 2, dep["metadata"]["name"]
    for hpa in of_kind(overlay, "HorizontalPodAutoscaler"):
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["minReplicas"] >= 2
    for pdb in of_kind(overlay, "PodDisruptionBudget"):
        assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable")


def test_dev_runs_one_replica_and_plaintext_grpc() -> None:
    for dep in of_kind("dev", "Deployment"):
        assert dep["spec"]["replicas"] == 1
        env = {e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        assert "PAYGATE_TLS_CERT_FILE" not in env
    assert not of_kind("dev", "Certificate")


def _env(dep: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


@pytest.mark.parametrize("overlay", ("prod", "external-db"))
def test_prod_mounts_a_client_and_server_certificate_per_service(overlay: str) -> None:
    certs = {c["metadata"]["name"]: c["spec"] for c in of_kind(overlay, "Certificate")}
    for dep in of_kind(overlay, "Deployment"):
        svc = component(dep)
        cert = certs[f"paygate-{svc}"]
        assert {"server auth", "client auth"} <= set(cert["usages"])
        assert f"paygate-{svc}" in cert["dnsNames"]
        assert f"paygate-{svc}.paygate.svc.cluster.local" in cert["dnsNames"]
        assert cert["issuerRef"]["name"]
        pod = dep["spec"]["template"]["spec"]
        secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        env = _env(dep)
        tls_dir = str(Path(env["PAYGATE_TLS_CERT_FILE"]).parent)
        assert secret_volumes[mounts[tls_dir]] == cert["secretName"]
        assert env["PAYGATE_TLS_KEY_FILE"].startswith(tls_dir)
        assert env["PAYGATE_TLS_CA_FILE"].startswith(tls_dir)
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["secret.reloader.stakater.com/reload"] == cert["secretName"]


def test_migrations_use_the_owner_dsn_and_services_the_runtime_dsn() -> None:
    for overlay in OVERLAYS:
        for job in of_kind(overlay, "Job"):
            svc = component(job).removeprefix("migrate-")
            (container,) = job["spec"]["template"]["spec"]["containers"]
            assert container["command"] + container["args"] == ["paygate", "migrate", "--service", svc]
            refs = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
            assert refs == {f"paygate-{svc}-db-owner"}
        for dep in of_kind(overlay, "Deployment"):
            svc = component(dep)
            refs = {
                e["secretRef"]["name"]
                for e in dep["spec"]["template"]["spec"]["containers"][0]["envFrom"]
                if "secretRef" in e
            }
            assert f"paygate-{svc}-db" in refs
            assert not any(r.endswith("-db-owner") for r in refs), "runtime pods must not get the owner DSN"


# --- secrets, ingress, database -------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_committed(overlay: str) -> None:
    assert check_deploy.no_committed_secrets(rendered(overlay), overlay) == []
    committed = [p for p in check_deploy.DEPLOY_DIR.rglob("*.yaml") if "secretGenerator" in p.read_text()]
    assert committed == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_limits_bodies_to_one_mebibyte(overlay: str) -> None:
    (ingress,) = of_kind(overlay, "Ingress")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "1m"
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert backends == {"paygate-gateway"}


@pytest.mark.parametrize("overlay", CNPG_OVERLAYS)
def test_cnpg_cluster_bootstraps_every_role_and_schema(overlay: str) -> None:
    (cluster,) = of_kind(overlay, "Cluster")
    assert cluster["spec"]["instances"] == (3 if overlay == "prod" else 1)
    roles = {r["name"] for r in cluster["spec"]["managed"]["roles"]}
    expected = {f"paygate_{s}" for s in SERVICES} | {f"paygate_{s}_owner" for s in SERVICES}
    assert roles == expected
    for role in cluster["spec"]["managed"]["roles"]:
        assert not role.get("superuser") and not role.get("createdb") and not role.get("createrole")
        assert role["passwordSecret"]["name"]
    (ref,) = cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQLRefs"]["configMapRefs"]
    (configmap,) = [c for c in of_kind(overlay, "ConfigMap") if c["metadata"]["name"] == ref["name"]]
    sql = configmap["data"][ref["key"]]
    assert "ARRAY['session', 'billing', 'keys', 'gateway']" in sql
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES" in sql
    assert "GRANT CREATE" not in sql.upper()


# --- network policy --------------------------------------------------------------------------


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        present = expr["key"] in labels
        value = labels.get(expr["key"])
        op = expr["operator"]
        if (
            (op == "In" and value not in expr["values"])
            or (op == "NotIn" and value in expr.get("values", []))
            or (op == "Exists" and not present)
            or (op == "DoesNotExist" and present)
        ):
            return False
    return True


def pods(overlay: str) -> dict[str, dict[str, str]]:
    """Pod name -> labels for every pod the overlay creates, including CNPG instance pods."""
    out = {component(w): w["spec"]["template"]["metadata"]["labels"] for w in workloads(overlay)}
    for cluster in of_kind(overlay, "Cluster"):
        out["postgres"] = {"cnpg.io/cluster": cluster["metadata"]["name"]}
    return out


def _external_peer(peer: dict[str, Any]) -> str:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        if block["cidr"] == "0.0.0.0/0":
            return "internet" if set(block.get("except", [])) >= PRIVATE_RANGES else "anywhere"
        ipaddress.ip_network(block["cidr"])
        return f"cidr:{block['cidr']}"
    namespace = peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
    pod_labels = peer.get("podSelector", {}).get("matchLabels", {})
    if namespace == "kube-system" and pod_labels == {"k8s-app": "kube-dns"}:
        return "kube-dns"
    if namespace == "cnpg-system" and "podSelector" not in peer:
        return "cnpg-operator"
    labels = peer["namespaceSelector"].get("matchLabels", {})
    if labels == {"paygate.dev/ingress": "true"} and "podSelector" not in peer:
        return "ingress-controller"
    if labels == {"paygate.dev/monitoring": "true"} and "podSelector" not in peer:
        return "monitoring"
    raise AssertionError(f"unclassified peer {peer}")


def _ports(rule: dict[str, Any]) -> list[tuple[int, str]]:
    assert rule.get("ports"), f"rule without ports opens every port: {rule}"
    return [(p["port"], p.get("protocol", "TCP")) for p in rule["ports"]]


def _rules(overlay: str, pod: str, direction: str) -> list[dict[str, Any]]:
    labels = pods(overlay)[pod]
    key = "ingress" if direction == "Ingress" else "egress"
    return [
        rule
        for np in of_kind(overlay, "NetworkPolicy")
        if direction in np["spec"]["policyTypes"] and _matches(np["spec"]["podSelector"], labels)
        for rule in np["spec"].get(key, [])
    ]


def _admits(overlay: str, dst: str, src: str, port: int, proto: str) -> bool:
    src_labels = pods(overlay)[src]
    for rule in _rules(overlay, dst, "Ingress"):
        if (port, proto) not in _ports(rule):
            continue
        peers = rule.get("from")
        if not peers or any(
            "podSelector" in p and "namespaceSelector" not in p and _matches(p["podSelector"], src_labels)
            for p in peers
        ):
            return True
    return False


def allowed_calls(overlay: str) -> set[tuple[str, str, int, str]]:
    """The connections the overlay's NetworkPolicies let through (both ends must allow in-namespace)."""
    all_pods = pods(overlay)
    calls: set[tuple[str, str, int, str]] = set()
    for src in all_pods:
        for rule in _rules(overlay, src, "Egress"):
            for port, proto in _ports(rule):
                for peer in rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]:
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        for dst, labels in all_pods.items():
                            if _matches(peer["podSelector"], labels) and _admits(
                                overlay, dst, src, port, proto
                            ):
                                calls.add((src, dst, port, proto))
                    else:
                        calls.add((src, _external_peer(peer), port, proto))
    for dst in all_pods:
        for rule in _rules(overlay, dst, "Ingress"):
            peers = rule.get("from")
            for port, proto in _ports(rule):
                if not peers:
                    calls.add(("outside", dst, port, proto))
                for peer in peers or []:
                    if "namespaceSelector" in peer or "ipBlock" in peer:
                        calls.add((_external_peer(peer), dst, port, proto))
    return calls


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_covers_every_pod_in_both_directions(overlay: str) -> None:
    deny = [
        np
        for np in of_kind(overlay, "NetworkPolicy")
        if np["spec"]["podSelector"] == {}
        and set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not np["spec"].get("ingress")
        and not np["spec"].get("egress")
    ]
    assert deny, "a default-deny NetworkPolicy must select every pod"
    for pod, labels in pods(overlay).items():
        allow = [
            np
            for np in of_kind(overlay, "NetworkPolicy")
            if np not in deny and _matches(np["spec"]["podSelector"], labels)
        ]
        assert allow, f"{overlay}: pod {pod} is selected by no allow policy"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_exactly_the_calls_the_code_makes(overlay: str) -> None:
    allowed = allowed_calls(overlay)
    expected = EXPECTED_CALLS[overlay]
    assert allowed - expected == set(), f"allowed but not in the call list: {sorted(allowed - expected)}"
    assert expected - allowed == set(), f"in the call list but blocked: {sorted(expected - allowed)}"


def test_the_graph_check_notices_an_extra_call() -> None:
    """Guard for the evaluator itself: opening billing -> keys (egress and ingress) is an extra call."""
    objs = [copy.deepcopy(o) for o in rendered("prod")]
    for np in objs:
        if np["kind"] == "NetworkPolicy" and np["metadata"]["name"] == "billing":
            np["spec"]["policyTypes"].append("Egress")
            np["spec"]["egress"] = [
                {
                    "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "keys"}}}],
                    "ports": [{"protocol": "TCP", "port": 50053}],
                }
            ]
        if np["kind"] == "NetworkPolicy" and np["metadata"]["name"] == "keys":
            np["spec"]["ingress"][0]["from"].append(
                {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "billing"}}}
            )
    rendered.cache_clear()
    try:
        original = check_deploy.build_overlay
        check_deploy.build_overlay = lambda name: objs  # type: ignore[assignment]
        assert allowed_calls("prod") - EXPECTED_CALLS["prod"] == {("billing", "keys", 50053, "TCP")}
    finally:
        check_deploy.build_overlay = original  # type: ignore[assignment]
        rendered.cache_clear()


# --- egress to the outside: the chain node, the providers, nothing more -----------------------------

# The pods that need to reach the internet (any public address) and why; everything else reaches only
# the cluster, the database and explicit CIDRs. NetworkPolicy is additive, so an internet rule on a pod
# makes any narrower rule for the same port moot: each internet rule must be one the pod needs.
INTERNET_NEEDS: dict[str, dict[tuple[int, str], str]] = {
    "gateway": {
        (443, "TCP"): "gateway-provider-egress",  # Stripe API, One.com API
        (587, "TCP"): "gateway",  # SMTP submission: the portal's contact form
        (25, "TCP"): "gateway",  # SMTP relay
    },
    "session": {
        (443, "TCP"): "session-webhook-egress",  # merchant webhook endpoints, any public host
        (587, "TCP"): "session",  # SMTP: customer mail, merchant notices
        (25, "TCP"): "session",
    },
    # CloudNativePG instances: the Kubernetes API server (its address differs per cluster) and backups.
    "postgres": {(443, "TCP"): "paygate-db", (6443, "TCP"): "paygate-db"},
}
# Wider than this is not "an explicit CIDR" for one chain node (or one provider's node range).
MIN_CHAIN_PREFIX = {4: 16, 6: 32}
INTERNET_PREFIX = 16  # an ipBlock wider than a /16 counts as internet egress


def _broad(peer: dict[str, Any]) -> bool:
    """Does this egress peer open (a large part of) the internet?"""
    if "ipBlock" not in peer:
        return False  # pod and namespace selectors stay inside the cluster
    return ipaddress.ip_network(peer["ipBlock"]["cidr"], strict=False).prefixlen < INTERNET_PREFIX


def internet_egress(objs: list[dict[str, Any]]) -> dict[str, dict[tuple[int, str], set[str]]]:
    """Pod -> (port, protocol) -> the NetworkPolicies that let it reach the internet on that port."""
    policies = [o for o in objs if o["kind"] == "NetworkPolicy"]
    templates = {
        o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: o["spec"]["template"][
            "metadata"
        ]["labels"]
        for o in objs
        if o["kind"] in ("Deployment", "Job")
    }
    for cluster in (o for o in objs if o["kind"] == "Cluster"):
        templates["postgres"] = {"cnpg.io/cluster": cluster["metadata"]["name"]}
    found: dict[str, dict[tuple[int, str], set[str]]] = {}
    for pod, labels in templates.items():
        for np in policies:
            if "Egress" not in np["spec"]["policyTypes"] or not _matches(np["spec"]["podSelector"], labels):
                continue
            for rule in np["spec"].get("egress", []):
                peers = rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
                if any(_broad(peer) for peer in peers):
                    ports = [(p["port"], p.get("protocol", "TCP")) for p in rule.get("ports") or []]
                    for port in ports or [(0, "any")]:
                        found.setdefault(pod, {}).setdefault(port, set()).add(np["metadata"]["name"])
    return found


def chain_egress_problems(objs: list[dict[str, Any]], cidr: str) -> list[str]:
    """What keeps the chain RPC egress from being one explicit CIDR, https only, per pod that needs it."""
    problems: list[str] = []
    network = ipaddress.ip_network(cidr)  # strict: host bits set is a typo, not a CIDR
    if network.prefixlen < MIN_CHAIN_PREFIX[network.version]:
        problems.append(f"chain CIDR {cidr} is wider than a /{MIN_CHAIN_PREFIX[network.version]}")
    chain = [
        o
        for o in objs
        if o["kind"] == "NetworkPolicy"
        and o["metadata"].get("labels", {}).get("paygate.dev/egress") == "chain-rpc"
    ]
    selected: list[str] = []
    for np in chain:
        name = np["metadata"]["name"]
        selected += [
            component(o)
            for o in objs
            if o["kind"] in ("Deployment", "Job")
            and _matches(np["spec"]["podSelector"], o["spec"]["template"]["metadata"]["labels"])
        ]
        if np["spec"]["policyTypes"] != ["Egress"] or np["spec"].get("ingress"):
            problems.append(f"{name}: must be an egress-only policy")
        rules = np["spec"].get("egress", [])
        if len(rules) != 1:
            problems.append(f"{name}: one rule expected, got {len(rules)}")
        for rule in rules:
            if rule.get("to") != [{"ipBlock": {"cidr": cidr}}]:
                problems.append(f"{name}: peers {rule.get('to')} are not exactly the ipBlock {cidr}")
            if rule.get("ports") != [{"protocol": "TCP", "port": 443}]:
                problems.append(f"{name}: ports {rule.get('ports')} are not exactly TCP 443")
    if sorted(selected) != sorted(CHAIN_CLIENTS):
        problems.append(
            f"chain policies select {sorted(selected)}, one each for {sorted(CHAIN_CLIENTS)} expected"
        )
    if any(o["kind"] == "ConfigMap" and o["metadata"]["name"] == "chain-rpc-egress" for o in objs):
        problems.append(
            "the chain-rpc-egress ConfigMap is build input and must not be applied (local-config)"
        )
    return problems


@pytest.mark.parametrize("overlay", RELEASE_OVERLAYS)
def test_release_chain_rpc_egress_is_one_explicit_cidr_on_443_only(overlay: str) -> None:
    assert chain_egress_problems(list(rendered(overlay)), chain_cidr(overlay)) == []


def test_the_chain_egress_check_notices_a_wide_cidr_another_port_and_a_missing_pod() -> None:
    """Guard for the check itself, on mutated copies of the prod render."""
    cidr = chain_cidr("prod")

    def mutated(change: Any) -> list[dict[str, Any]]:
        objs = [copy.deepcopy(o) for o in rendered("prod")]
        for np in objs:
            if np["kind"] == "NetworkPolicy" and np["metadata"]["name"] == "chain-rpc-egress-gateway":
                change(np)
        return objs

    def widen(np: dict[str, Any]) -> None:
        np["spec"]["egress"][0]["to"] = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]

    def plain_port(np: dict[str, Any]) -> None:
        np["spec"]["egress"][0]["ports"].append({"protocol": "TCP", "port": 8545})

    def drop(np: dict[str, Any]) -> None:
        np["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/component": "nothing"}}

    assert any("not exactly the ipBlock" in p for p in chain_egress_problems(mutated(widen), cidr))
    assert any("not exactly TCP 443" in p for p in chain_egress_problems(mutated(plain_port), cidr))
    assert any("chain policies select" in p for p in chain_egress_problems(mutated(drop), cidr))
    assert any("wider than a /16" in p for p in chain_egress_problems(list(rendered("prod")), "10.0.0.0/8"))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_pod_gets_internet_egress_it_does_not_need(overlay: str) -> None:
    """Only the gateway (providers, SMTP), the session service (merchant webhooks, SMTP) and the CNPG
    instances reach the internet, each internet-443 rule sits in the one policy named for its reason, and
    billing, keys, the migration Jobs and the chain policies open nothing beyond the cluster and a CIDR."""
    found = internet_egress(list(rendered(overlay)))
    expected = {
        pod: {port: {policy} for port, policy in needs.items()}
        for pod, needs in INTERNET_NEEDS.items()
        if pod in pods(overlay)
    }
    assert found == expected


def test_the_internet_egress_check_notices_a_pod_that_gains_the_internet() -> None:
    """Guard: keys given the gateway's provider rule (say, by a broadened podSelector) is reported."""
    objs = [copy.deepcopy(o) for o in rendered("prod")]
    for np in objs:
        if np["kind"] == "NetworkPolicy" and np["metadata"]["name"] == "gateway-provider-egress":
            np["spec"]["podSelector"] = {"matchLabels": {"app.kubernetes.io/name": "paygate"}}
    found = internet_egress(objs)
    assert found["keys"] == {(443, "TCP"): {"gateway-provider-egress"}}
    assert found["migrate-billing"] == {(443, "TCP"): {"gateway-provider-egress"}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_without_its_chain_cidr_does_not_build(overlay: str, tmp_path: Path) -> None:
    """The CIDR has one place per overlay, and it cannot be forgotten: without it kustomize fails."""
    copy_dir = tmp_path / "deploy"
    shutil.copytree(check_deploy.DEPLOY_DIR, copy_dir)
    (copy_dir / "overlays" / overlay / "chain-rpc-egress.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: something-else\n"
        "  annotations:\n    config.kubernetes.io/local-config: 'true'\ndata: {}\n"
    )
    result = subprocess.run(
        [check_deploy.find_kubectl(), "kustomize", str(copy_dir / "overlays" / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "chain-rpc-egress" in result.stderr


# --- schema validation -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_validates(overlay: str) -> None:
    objs = rendered(overlay)
    findings = check_deploy.validate_builtin(objs, overlay) + check_deploy.validate_custom(objs, overlay)
    assert findings == [], "\n".join(map(str, findings))
    kinds = {o["kind"] for o in objs if not check_deploy.is_builtin(o)}
    platform = {"Certificate", "PodMonitor", "PrometheusRule", "HTTPRoute"}
    expected = {
        "dev": {"Cluster"},
        "prod": platform | {"Cluster", "ScheduledBackup"},
        "external-db": platform,
    }
    assert kinds == expected[overlay]


def test_validation_rejects_broken_objects() -> None:
    objs = {check_deploy.object_name(o): copy.deepcopy(o) for o in rendered("prod")}
    dep = objs["Deployment/paygate-session"]
    dep["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFS"] = True
    cert = objs["Certificate/paygate-keys"]
    cert["spec"]["usages"].append("server-auth")
    cluster = objs["Cluster/paygate-db"]
    cluster["spec"]["instaces"] = 3
    cluster["spec"]["managed"]["roles"][0]["passwordSecret"] = {}
    findings = check_deploy.validate_builtin([dep], "prod") + check_deploy.validate_custom(
        [cert, cluster], "prod"
    )
    text = "\n".join(map(str, findings))
    assert "readOnlyRootFS" in text
    assert "server-auth" in text
    assert "instaces" in text
    assert "'name' is a required property" in text
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "no vendored schema" in str(check_deploy.validate_custom([unknown], "prod")[0])
