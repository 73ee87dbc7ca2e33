"""The alerts, the Grafana dashboard and their docs, checked as the overlays render them.

What each test holds (an operator walk found each of these wrong once):
- the certificate alert finds cert-manager's series whether Prometheus keeps cert-manager's `namespace` label
  (honorLabels true) or moves it to `exported_namespace` (honorLabels false, cert-manager's chart default);
- a gauge every replica computes from the same database query is never summed across replicas;
- the alerts README and the metrics' HELP ask for exist, and the metrics table lists every metric;
- every alert links its runbook section, and the Prometheus Operator objects carry the label a
  kube-prometheus-stack Prometheus selects them by, both set in the overlay's one settings file;
- the backup alert fires when CNPG's exporter is not scraped at all;
- the runbooks name what the code writes (quarantine reasons, gRPC status names).
"""

from __future__ import annotations

import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from session_service.domain.payment_events import QuarantineReason

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy/observability/grafana/paygate-overview.json"
RUNBOOKS = ROOT / "docs/runbooks.md"
DEPLOY_DOC = ROOT / "docs/deploy.md"
README = ROOT / "README.md"
MIGRATIONS = ROOT / "session_service/migrations"
PACKAGES = ("paygate_runtime", "webhook_gateway", "session_service", "billing_service", "keys_service")
# The overlays that include components/monitoring.
MONITORED = ("prod", "external-db")
# The overlays whose database is CloudNativePG (the CNPG exporter and its alerts are theirs only).
MONITORED_CNPG = ("prod",)

# Gauges that every replica of a service sets from the same database-wide query (SampledGauges:
# INBOX_BACKLOG_SQL, UNKNOWN_SESSION_SQL and CHAIN_SQL in webhook_gateway/entrypoints/observability.py;
# OUTBOX_SQL, QUARANTINE_SQL and MERCHANT_WEBHOOK_SQL in session_service/entrypoints/metrics.py; the watcher's
# count of open `chain_untraced_blocks`; the audit anchor's read of `audit_chain_heads`). N replicas export N
# copies of one number: summed, the value is N times the truth and a threshold fires at 1/N of itself. Take
# max (or min) across replicas instead.
SHARED_DATABASE_GAUGES = (
    "paygate_inbox_pending",
    "paygate_inbox_oldest_pending_age_seconds",
    "paygate_inbox_unknown_session_events",
    "paygate_chain_watcher_lag_blocks",
    "paygate_chain_watcher_last_pass_age_seconds",
    "paygate_chain_untraced_blocks",
    "paygate_outbox_pending",
    "paygate_outbox_oldest_pending_age_seconds",
    "paygate_quarantine_open_entries",
    "paygate_merchant_webhook_pending",
    "paygate_merchant_webhook_oldest_pending_age_seconds",
    "paygate_provider_refund_asks_waiting",
    "paygate_provider_refund_asks_oldest_age_seconds",
    "paygate_audit_chain_head_sequence",
    "paygate_audit_chains",
)


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    try:
        return tuple(check_deploy.build_overlay(overlay))
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


def of_kind(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in rendered(overlay) if o["kind"] == kind]


def alerts(overlay: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for rule_object in of_kind(overlay, "PrometheusRule"):
        for group in rule_object["spec"]["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"{overlay}: alert {rule['alert']} defined twice"
                    found[rule["alert"]] = rule
    assert found, f"{overlay}: no alerts"
    return found


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def monitoring_settings(overlay: str) -> dict[str, str]:
    """The overlay's one place for monitoring settings (read by kustomize, never applied)."""
    config = yaml.safe_load((check_deploy.OVERLAYS_DIR / overlay / "monitoring.yaml").read_text())
    assert config["kind"] == "ConfigMap" and config["metadata"]["name"] == "paygate-monitoring"
    assert config["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true"
    return {str(k): str(v) for k, v in config["data"].items()}


def section(text: str, heading: str) -> str:
    match = re.search(rf"^## {re.escape(heading)}\s*$(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"no section '## {heading}'"
    return match.group(1)


# --- 2. certificates -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", MONITORED)
def test_certificate_alert_matches_namespace_or_exported_namespace(overlay: str) -> None:
    expr = str(alerts(overlay)["PaygateCertificateExpiresSoon"]["expr"])
    selectors = re.findall(r"certmanager_certificate_expiration_timestamp_seconds\{([^}]*)\}", expr)
    matched = {frozenset(re.findall(r'(\w+)\s*=\s*"paygate"', selector)) for selector in selectors}
    # honorLabels true keeps the Certificate's namespace in `namespace`; false (cert-manager chart's default)
    # renames it `exported_namespace` and `namespace` becomes cert-manager's own.
    assert {frozenset({"namespace"}), frozenset({"exported_namespace"})} <= matched, expr


# --- 3. gauges from a shared database query -----------------------------------------------------------


def summed_gauges(expr: str) -> list[str]:
    """The SHARED_DATABASE_GAUGES that appear inside a `sum` aggregation of `expr`."""
    found = []
    for match in re.finditer(r"\bsum\s*(?:(?:by|without)\s*\([^)]*\)\s*)?\(", expr):
        depth, end = 1, match.end()
        while depth and end < len(expr):
            depth += {"(": 1, ")": -1}.get(expr[end], 0)
            end += 1
        body = expr[match.end() : end]
        found += [g for g in SHARED_DATABASE_GAUGES if re.search(rf"\b{g}\b", body)]
    return found


def test_the_sum_check_notices_a_summed_shared_gauge() -> None:
    assert summed_gauges("sum by (provider) (paygate_inbox_pending) > 5") == ["paygate_inbox_pending"]
    assert summed_gauges("sum(delta(paygate_quarantine_open_entries[1h])) by (reason)") == [
        "paygate_quarantine_open_entries"
    ]
    assert summed_gauges("max by (provider) (paygate_inbox_pending) > 5") == []
    assert summed_gauges("sum(rate(paygate_http_requests_total[5m])) or max(paygate_outbox_pending)") == []


@pytest.mark.parametrize("overlay", MONITORED)
def test_no_alert_sums_a_shared_database_gauge_across_replicas(overlay: str) -> None:
    wrong = {name: summed_gauges(str(rule["expr"])) for name, rule in alerts(overlay).items()}
    assert {name: gauges for name, gauges in wrong.items() if gauges} == {}


def test_no_dashboard_panel_sums_a_shared_database_gauge_across_replicas() -> None:
    wrong = {expr: summed_gauges(expr) for expr in dashboard_expressions()}
    assert {expr: gauges for expr, gauges in wrong.items() if gauges} == {}


# --- 4. the alerts README and the metrics' HELP recommend ----------------------------------------------

RECOMMENDED = {
    # README "On-chain payments" and the gauge's HELP: "alert above 0".
    "PaygateChainUntracedBlocks": r"paygate_chain_untraced_blocks\b.*>\s*0\b",
    # Events that match no session (README "Metrics"): a provider account sending another environment's events.
    "PaygateUnknownSessionEvents": r"paygate_inbox_unknown_session_events\b.*>\s*0\b",
    # The merchant webhook lag (README "Metrics").
    "PaygateMerchantWebhookLag": r"paygate_merchant_webhook_oldest_pending_age_seconds\b.*>",
    # HELP: 0 closed, 1 half-open, 2 open.
    "PaygateProviderCircuitOpen": r"paygate_provider_circuit_state\b.*==\s*2\b",
}


@pytest.mark.parametrize("overlay", MONITORED)
@pytest.mark.parametrize("alert", sorted(RECOMMENDED))
def test_the_recommended_alerts_exist(overlay: str, alert: str) -> None:
    rules = alerts(overlay)
    assert alert in rules, f"{overlay}: no alert {alert}"
    assert re.search(RECOMMENDED[alert], str(rules[alert]["expr"]), flags=re.DOTALL), rules[alert]["expr"]


@pytest.mark.parametrize("overlay", MONITORED)
def test_docs_name_every_metric_an_alert_queries(overlay: str) -> None:
    monitoring = section(DEPLOY_DOC.read_text(), "5b. Monitoring")
    queried = {
        m for rule in alerts(overlay).values() for m in re.findall(r"\b(paygate_\w+)", str(rule["expr"]))
    }
    missing = sorted(m for m in queried if f"`{m}" not in monitoring)
    assert missing == [], f'docs/deploy.md "5b. Monitoring" does not name {missing}'


def defined_metrics() -> set[str]:
    """Every metric family the services define, as exposed (counters with their `_total`)."""
    names = set()
    pattern = (
        r'\b(Counter|Gauge|Histogram|Summary|gauge|CounterMetricFamily|GaugeMetricFamily)\(\s*"(paygate_\w+)"'
    )
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for kind, name in re.findall(pattern, path.read_text()):
                counter = kind in ("Counter", "CounterMetricFamily")
                names.add(f"{name}_total" if counter and not name.endswith("_total") else name)
    return names


def test_the_readme_metrics_table_lists_every_metric() -> None:
    defined = defined_metrics()
    assert {"paygate_provider_circuit_state", "paygate_reconcile_checks_total"} <= defined
    table = set(re.findall(r"^\| `(paygate_\w+)` \|", section(README.read_text(), "Metrics"), re.MULTILINE))
    assert sorted(defined - table) == [], "metrics missing from README's metrics table"


# --- 5. runbook links --------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", MONITORED)
def test_every_alert_links_its_runbook_section(overlay: str) -> None:
    base = monitoring_settings(overlay)["runbook_base_url"]
    headings = set(re.findall(r"^## (\S+)\s*$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    for name, rule in alerts(overlay).items():
        url = rule.get("annotations", {}).get("runbook_url")
        assert url == f"{base}#{name.lower()}", f"{overlay}: {name} runbook_url {url!r}"
        assert name in headings, f"{name}: no '## {name}' in docs/runbooks.md"


# --- 6. selection labels, and a backup alert that cannot fail open -------------------------------------


@pytest.mark.parametrize("overlay", MONITORED)
def test_monitoring_objects_carry_the_label_prometheus_selects_by(overlay: str) -> None:
    release = monitoring_settings(overlay)["prometheus_release"]
    objects = of_kind(overlay, "PodMonitor") + of_kind(overlay, "PrometheusRule")
    assert objects
    for obj in objects:
        assert obj["metadata"].get("labels", {}).get("release") == release, check_deploy.object_name(obj)


@pytest.mark.parametrize("overlay", MONITORED_CNPG)
def test_the_backup_alert_fires_when_the_cnpg_exporter_is_not_scraped(overlay: str) -> None:
    expr = re.sub(r"\s+", "", str(alerts(overlay)["PaygateDatabaseBackupMissing"]["expr"]))
    # max() of no series is empty and compares to nothing: absent() is what turns "no exporter" into an alert.
    assert 'absent(cnpg_collector_last_available_backup_timestamp{namespace="paygate"})' in expr, expr


def test_external_db_has_no_cnpg_monitoring() -> None:
    """Without CloudNativePG there is no CNPG exporter: its PodMonitor would find nothing and the absent()
    guard would fire forever. The external database is watched with its own exporter and alerts."""
    assert not [m for m in of_kind("external-db", "PodMonitor") if "cnpg.io/cluster" in json.dumps(m)]
    assert not [name for name, rule in alerts("external-db").items() if "cnpg_" in str(rule["expr"])]


# --- 7. what the runbooks name -----------------------------------------------------------------------


def quarantine_reasons_in_schema() -> set[str]:
    """The reasons of the last migration that sets quarantine_reason_check (each is a superset)."""
    latest = ""
    for path in sorted(MIGRATIONS.glob("*.sql")):
        for check in re.findall(
            r"quarantine_reason_check\s+CHECK\s*\(reason IN \(([^)]*)\)", path.read_text()
        ):
            latest = check
    assert latest
    return set(re.findall(r"'(\w+)'", latest))


def test_the_quarantine_runbook_lists_every_reason() -> None:
    text = section(RUNBOOKS.read_text(), "PaygateQuarantineGrowing")
    reasons = quarantine_reasons_in_schema() | {reason.value for reason in QuarantineReason}
    assert {"provider_mismatch", "reorged_after_paid"} <= reasons
    missing = sorted(reason for reason in reasons if f"`{reason}`" not in text)
    assert missing == [], f"PaygateQuarantineGrowing does not list {missing}"


def test_the_outbox_runbook_names_grpc_codes_as_the_logs_print_them() -> None:
    text = section(RUNBOOKS.read_text(), "PaygateOutboxStuck")
    codes = {code.name for code in grpc.StatusCode}
    lower = sorted(
        {word for word in re.findall(r"`(\w+)`", text) if word.upper() in codes and word not in codes}
    )
    assert lower == [], (
        f"the logs and `paygate trace` print {[w.upper() for w in lower]}, the runbook says {lower}"
    )
