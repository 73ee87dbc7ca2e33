"""`paygate demo` as a person runs it (a subprocess), against an in-process stack described by stack.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

from support.cli import cli_env, run_paygate
from support.stack import ServiceStack


async def _run_demo(home: Path, *extra: str) -> tuple[int, str, str]:
    return await run_paygate(cli_env(home), "demo", *extra)


def _write_stack(home: Path, stack: ServiceStack, api_key: str, merchant_id: str, secret: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "stack.json").write_text(
        json.dumps(
            {
                "gateway_url": stack.base_url,
                "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
                "merchant": {"id": merchant_id, "api_key": api_key},
                "webhook_secrets": {"stripe": secret},
            }
        )
    )


async def test_demo_runs_the_seed_flow_and_shows_invoice_key_and_link(
    stack: ServiceStack, stack_env: dict[str, str], tmp_path: Path
) -> None:
    merchant = await stack.create_merchant(name="Demo Shop", prefix="demo")
    _write_stack(tmp_path, stack, merchant.api_key, merchant.id, stack_env["PAYGATE_STRIPE_WEBHOOK_SECRETS"])
    code, out, err = await _run_demo(tmp_path)
    assert code == 0, out + err
    for step in range(1, 5):
        assert f"[{step}/4]" in out
    session_id = re.search(r"session\s+([0-9a-f-]{36})", out).group(1)  # type: ignore[union-attr]
    status, session = await stack.request("GET", f"/v1/sessions/{session_id}", headers=merchant.headers)
    assert status == 200
    assert (session["status"], session["amount"], session["currency"]) == ("paid", "99.99", "EUR")
    # What the demo printed is what the merchant API says.
    assert re.search(rf"invoice\s+{re.escape(session['invoice_number'])}\n", out), out
    status, keys = await stack.request("GET", "/v1/api_keys", headers=merchant.headers)
    [key] = [k for k in keys["data"] if k["id"] == session["api_key_id"]]
    assert re.search(rf"api key\s+{re.escape(key['hint'])}\n", out), out
    assert f"access link      {session['access_url']}" in out
    assert session["access_url"].startswith("http") and "/access?token=" in session["access_url"]
    assert "demo complete" in out


async def test_demo_fails_clearly_with_a_wrong_webhook_secret(stack: ServiceStack, tmp_path: Path) -> None:
    merchant = await stack.create_merchant(name="Demo Shop", prefix="demo")
    _write_stack(tmp_path, stack, merchant.api_key, merchant.id, "whsec_not_the_gateways_secret")
    code, out, err = await _run_demo(tmp_path, "--timeout", "3")
    assert code == 1
    assert "[2/4]" in out and "[3/4]" not in out
    assert "paygate demo: the gateway did not accept the signed webhook: HTTP 400" in err


async def test_demo_without_a_stack_says_so(tmp_path: Path) -> None:
    code, _out, err = await _run_demo(tmp_path / "empty")
    assert code != 0
    assert "no running stack found" in err
