"""Every path the gateway serves to the public is routed by every overlay's edge: the Ingress, and the
HTTPRoute where the overlay has one (components/gateway-api). The paths come from the app itself:
`openapi_document.OPERATIONS` plus `UNDOCUMENTED_ROUTES`, which tests/integration/api_contract keeps equal to the
gateway's router. A route the app serves and the edge does not route is a 404 from the ingress controller that
no gateway test sees (the merchant dashboard and the favicon were, once).
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from webhook_gateway.entrypoints.openapi_document import OPERATIONS, UNDOCUMENTED_ROUTES

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy

OVERLAYS = ("dev", "prod", "external-db")
# Overlays that include components/gateway-api and so must route through an HTTPRoute as well.
HTTPROUTE_OVERLAYS = ("prod", "external-db")
# Served by the gateway but deliberately kept off the public edge, with why.
NOT_PUBLIC = {
    # Operations traffic (contract §6a): the metrics are served on the metrics port (PAYGATE_METRICS_PORT),
    # scraped by the PodMonitor inside the cluster; the public port answers 404 for it. Routing it would at
    # best expose a 404 and at worst, after a change, the service's internals.
    "/metrics": "operations traffic, on its own port, scraped in-cluster only",
    # kubelet's probes reach the pod directly; from outside they would only tell a scanner what runs here.
    "/healthz": "kubelet's liveness probe, never routed from outside",
    "/readyz": "kubelet's readiness probe, never routed from outside",
}


def served_paths() -> list[str]:
    """Each path the gateway serves, as a concrete example path ({id} -> a sample value)."""
    templates = {op.path for op in OPERATIONS} | {path for _, path in UNDOCUMENTED_ROUTES}
    return sorted(re.sub(r"\{[^}]+\}", "x1", template) for template in templates)


def public_paths() -> list[str]:
    return [path for path in served_paths() if path not in NOT_PUBLIC]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    try:
        return tuple(check_deploy.build_overlay(overlay))
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


def _matches(kind: str, value: str, path: str) -> bool:
    """Ingress `Exact`/`Prefix` and Gateway API `Exact`/`PathPrefix`: a prefix matches whole path elements."""
    if kind == "Exact":
        return path == value
    if kind in ("Prefix", "PathPrefix"):
        prefix = value.rstrip("/")
        return prefix == "" or path == prefix or path.startswith(prefix + "/")
    raise AssertionError(f"unexpected path match type {kind}")


def ingress_rules(overlay: str) -> list[tuple[str, str]]:
    rules = []
    for ingress in (o for o in rendered(overlay) if o["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for entry in rule["http"]["paths"]:
                assert entry["backend"]["service"]["name"] == "paygate-gateway", entry
                rules.append((entry["pathType"], entry["path"]))
    return rules


def httproute_rules(overlay: str) -> list[tuple[str, str]]:
    rules = []
    for route in (o for o in rendered(overlay) if o["kind"] == "HTTPRoute"):
        for rule in route["spec"]["rules"]:
            assert [b["name"] for b in rule["backendRefs"]] == ["paygate-gateway"], rule
            rules.extend((m["path"]["type"], m["path"]["value"]) for m in rule["matches"])
    return rules


def unrouted(rules: list[tuple[str, str]], paths: list[str]) -> list[str]:
    return [path for path in paths if not any(_matches(kind, value, path) for kind, value in rules)]


def test_the_app_serves_the_dashboard_and_the_favicons() -> None:
    paths = served_paths()
    assert {"/dashboard", "/dashboard/", "/favicon.svg", "/favicon.ico", "/v1/sessions"} <= set(paths)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_public_gateway_path_is_routed_by_the_ingress(overlay: str) -> None:
    rules = ingress_rules(overlay)
    assert rules, f"{overlay}: no Ingress"
    missing = unrouted(rules, public_paths())
    assert missing == [], f"{overlay}: the Ingress does not route {missing}"


@pytest.mark.parametrize("overlay", HTTPROUTE_OVERLAYS)
def test_every_public_gateway_path_is_routed_by_the_httproute(overlay: str) -> None:
    rules = httproute_rules(overlay)
    assert rules, f"{overlay}: no HTTPRoute"
    missing = unrouted(rules, public_paths())
    assert missing == [], f"{overlay}: the HTTPRoute does not route {missing}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_operations_paths_stay_off_the_public_edge(overlay: str) -> None:
    for rules in (ingress_rules(overlay), httproute_rules(overlay)):
        exposed = [path for path in NOT_PUBLIC if not unrouted(rules, [path])]
        assert exposed == [], f"{overlay}: routes {exposed} to the public"


def test_the_route_check_notices_a_missing_and_a_partial_prefix() -> None:
    assert unrouted([("Prefix", "/v1")], ["/v1/sessions", "/v1"]) == []
    assert unrouted([("Prefix", "/dash")], ["/dashboard"]) == ["/dashboard"]
    assert unrouted([("Exact", "/dashboard")], ["/dashboard/sessions"]) == ["/dashboard/sessions"]
