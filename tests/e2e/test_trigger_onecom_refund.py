"""`paygate trigger onecom` against `paygate up` and its One.com test double: the transaction the trigger pays
with is a payment the double knows, so a refund of that session goes through One.com's API and settles on the
double's `payment.refunded` webhook, as after paying on the double's own page."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from support.paygate_up import running_paygate_up

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def paygate_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_paygate_up(tmp_path_factory.mktemp("paygate") / "home") as stack:
        yield stack


def _paygate(stack: dict[str, Any], *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(stack["home"])
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _api(stack: dict[str, Any], method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"X-API-Key": stack["merchant"]["api_key"], **kwargs.pop("headers", {})}
    return requests.request(method, stack["gateway_url"] + path, headers=headers, timeout=15, **kwargs)


def _wait_for(stack: dict[str, Any], session_id: str, status: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = _api(stack, "GET", f"/v1/sessions/{session_id}").json()
        if body["status"] == status:
            return body
        assert time.monotonic() < deadline, f"session not {status} within {timeout}s: {body}"
        time.sleep(0.3)


def test_a_session_paid_by_trigger_onecom_is_refunded_through_the_double(paygate_up: dict[str, Any]) -> None:
    stack = paygate_up
    created = _api(
        stack, "POST", "/v1/sessions", json={"amount": "12.00", "currency": "EUR", "provider": "onecom"}
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]

    result = _paygate(stack, "trigger", "onecom", "payment.succeeded", "--session", session_id)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HTTP 200" in result.stdout, result.stdout
    _wait_for(stack, session_id, "paid")

    refund = _api(
        stack,
        "POST",
        f"/v1/sessions/{session_id}/refund",
        json={"reason": "requested_by_customer"},
        headers={"Idempotency-Key": f"refund-{session_id}"},
    )
    assert refund.status_code == 202, refund.text
    body = refund.json()
    assert "provider_error" not in body, (body["status"], body.get("provider_error"))
    assert body["status"] in ("pending", "succeeded"), body
    assert body["provider_refund_id"].startswith("re_"), body
    refunded = _wait_for(stack, session_id, "refunded")
    assert refunded["amount_refunded"] == "12.00"

    # The double knows the transaction the event named: the session's own payment there (the one the gateway
    # created with the session), settled as its page settles one, and refunded in full.
    state = requests.get(stack["onecom"]["api_base"] + "/_double", timeout=10).json()
    payments = [p for p in state["payments"] if p["reference"] == session_id]
    assert [(p["status"], p["amount_received_minor"], p["amount_refunded_minor"]) for p in payments] == [
        ("succeeded", 1200, 1200)
    ], payments
