"""Dashboards and alerts as code stay true to the code: every paygate metric the Grafana dashboard or the
alert rules query is one a service defines, and every alert has its runbook section in docs/runbooks.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy/observability/grafana/paygate-overview.json"
RULES = ROOT / "deploy/components/monitoring/prometheusrule.yaml"
RUNBOOKS = ROOT / "docs/runbooks.md"
PACKAGES = ("paygate_runtime", "webhook_gateway", "session_service", "billing_service", "keys_service")
# What a Prometheus client appends to a metric family's name in the exposition.
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def _defined_metrics() -> set[str]:
    names = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r'"(paygate_[a-z0-9_]+)"', path.read_text()))
    return names


def _family(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _queried(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in re.findall(r"\b(paygate_[a-z0-9_]+)", expr)}


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_queries_only_metrics_the_services_define() -> None:
    defined = _defined_metrics()
    queried = _queried(_dashboard_expressions())
    assert queried, "the dashboard queries no paygate metric"
    unknown = sorted(name for name in queried if name not in defined and _family(name) not in defined)
    assert not unknown, f"dashboard queries metrics no service defines: {unknown}"


def test_the_dashboard_is_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("payments fulfilled per second, by provider", "payment to fulfilment", "error", "oldest"):
        assert wanted in titles, wanted
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_every_alert_has_a_runbook_section_and_queries_defined_metrics() -> None:
    documents = [d for d in yaml.safe_load_all(RULES.read_text()) if d]
    rules = [
        rule
        for document in documents
        if document.get("kind") == "PrometheusRule"
        for group in document["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert rules
    headings = set(re.findall(r"^## (\S+)\s*$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    missing = sorted(rule["alert"] for rule in rules if rule["alert"] not in headings)
    assert not missing, f"alerts without a runbook section in docs/runbooks.md: {missing}"
    defined = _defined_metrics()
    queried = _queried([str(rule["expr"]) for rule in rules])
    unknown = sorted(name for name in queried if name not in defined and _family(name) not in defined)
    assert not unknown, f"alert rules query metrics no service defines: {unknown}"
    # A rule that links its runbook links an existing section.
    for rule in rules:
        url = rule.get("annotations", {}).get("runbook_url", "")
        if "runbooks.md#" in url:
            assert url.rsplit("#", 1)[1] in {h.lower() for h in headings}, url
