"""`paygate trigger onecom payment.succeeded` on a session that is no longer payable refuses, in one line with a
non-zero exit, instead of recording a second payment at the One.com test double (the trigger records the
event's payment there first, as the double's page does: on a paid session that was a new, second payment, which
a refund could then take money back from)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from paygate_dev.devtools import trigger_cmd
from paygate_dev.devtools.onecom_double import OneComDouble
from support import polling
from support.stack import ServiceStack

ROOT = Path(__file__).resolve().parents[3]


def _facts(stack: ServiceStack, double: OneComDouble) -> dict[str, Any]:
    """What `paygate up` writes to stack.json with its One.com test double, for this in-process stack."""
    return {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
        },
        "onecom": {"api_base": double.base_url},
    }


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    trigger_cmd.configure(parser)
    return parser.parse_args(list(argv))


def _paygate(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_trigger_onecom_refuses_to_pay_a_session_already_paid(
    stack: ServiceStack, double: OneComDouble, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant()
    status, session = await stack.request(
        "POST",
        "/v1/sessions",
        json={"amount": "12.00", "currency": "EUR", "provider": "onecom"},
        headers=merchant.headers,
    )
    assert status == 201, session
    sid = session["id"]
    facts = _facts(stack, double)

    def payments() -> list[str]:
        return [p.status for p in double.payments.values() if p.reference == sid]

    assert await trigger_cmd.trigger(_parse("onecom", "payment.succeeded", "--session", sid), facts) == 0

    async def paid() -> bool:
        status, body = await stack.request("GET", f"/v1/sessions/{sid}", headers=merchant.headers)
        return status == 200 and body["status"] == "paid"

    await polling.eventually(paid, timeout=20, what="session paid")
    assert payments() == ["succeeded"]  # the gateway's payment at the double, paid by the trigger

    # Again, in process: refused before anything is recorded at the double or sent to the gateway.
    again = _parse("onecom", "payment.succeeded", "--session", sid)
    try:
        await trigger_cmd.trigger(again, facts)
    except trigger_cmd.TriggerError as exc:
        assert "already paid" in str(exc) and sid in str(exc), exc
    else:
        raise AssertionError("a second trigger of a paid session was sent")
    assert payments() == ["succeeded"]

    # And as the command: a non-zero exit and one line saying why, even with an explicit amount and currency.
    (tmp_path / "stack.json").write_text(json.dumps(facts))
    for extra in ((), ("--amount", "12.00", "--currency", "EUR")):
        result = await asyncio.to_thread(
            _paygate, tmp_path, "trigger", "onecom", "payment.succeeded", "--session", sid, *extra
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert "already paid" in result.stderr, result.stderr
        assert "HTTP" not in result.stdout and "test double payment" not in result.stdout, result.stdout
    assert payments() == ["succeeded"]
