"""`PaygateRefundAskWaiting` evaluated by Prometheus itself (`promtool test rules`), on the rule as
deploy/components/monitoring/prometheusrule.yaml writes it: it fires once a refund has waited more than 30
minutes for its provider, not before, not for a provider with nothing waiting, not N times for N gateway
replicas exporting one number, and stops once the refund is asked for. Skipped where promtool is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/components/monitoring/prometheusrule.yaml"
ALERT = "PaygateRefundAskWaiting"
AGE = "paygate_provider_refund_asks_oldest_age_seconds"


def _rule_group() -> dict[str, Any]:
    """The `paygate` PrometheusRule's group holding the alert, as a plain Prometheus rule group."""
    [paygate] = [doc for doc in yaml.safe_load_all(RULES.read_text()) if doc["metadata"]["name"] == "paygate"]
    [group] = [g for g in paygate["spec"]["groups"] if any(r.get("alert") == ALERT for r in g["rules"])]
    return {"name": group["name"], "rules": [r for r in group["rules"] if r.get("alert") == ALERT]}


def _firing(provider: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "warning", "provider": provider},
        "exp_annotations": {
            "runbook_url": "docs/runbooks.md#paygaterefundaskwaiting",
            "summary": f"A {provider} refund has waited over 30 minutes to be asked of the provider",
            "description": (
                "Refunds stay pending with their amounts reserved and customers get no money back until "
                f"{provider}'s API takes them. Check its circuit, status page and the gateway's egress, and each "
                "kept refund's last_error."
            ),
        },
    }


def test_the_refund_ask_alert_fires_after_30_minutes_of_waiting(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [_rule_group()]}))
    # One refund waits from t=0 and is asked for at t=40m; two gateway replicas export the same age (max, one
    # alert). Stripe has nothing waiting. A scrape every minute.
    series = [
        {"series": f'{AGE}{{provider="onecom",instance="gw-a"}}', "values": "0+60x40 0x10"},
        {"series": f'{AGE}{{provider="onecom",instance="gw-b"}}', "values": "0+60x40 0x10"},
        {"series": f'{AGE}{{provider="stripe",instance="gw-a"}}', "values": "0x50"},
    ]
    alerts = [
        {"eval_time": "29m", "alertname": ALERT, "exp_alerts": []},
        {"eval_time": "30m", "alertname": ALERT, "exp_alerts": []},  # exactly 30 minutes: not more
        {"eval_time": "31m", "alertname": ALERT, "exp_alerts": [_firing("onecom")]},
        {"eval_time": "39m", "alertname": ALERT, "exp_alerts": [_firing("onecom")]},
        {"eval_time": "45m", "alertname": ALERT, "exp_alerts": []},
    ]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run(
        [promtool, "test", "rules", "tests.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
