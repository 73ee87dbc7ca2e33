"""`paygate demo` after the stack's merchant key was rolled or revoked: stack.json's key answers 401, and the
demo says in one clear line that the key in stack.json no longer works and how to fix it (no traceback, no
secret printed)."""

from __future__ import annotations

import json
from pathlib import Path

from support.cli import cli_env, run_paygate
from support.stack import Merchant, ServiceStack


async def _run_demo(home: Path) -> tuple[int, str, str]:
    return await run_paygate(cli_env(home), "demo", "--timeout", "5")


def _write_stack(home: Path, stack: ServiceStack, merchant: Merchant) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "stack.json").write_text(
        json.dumps(
            {
                "gateway_url": stack.base_url,
                "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
                "merchant": {"id": merchant.id, "api_key": merchant.api_key},
                "webhook_secrets": {"stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"]},
            }
        )
    )


async def _roll_over_the_api(stack: ServiceStack, merchant: Merchant) -> str:
    """Roll the merchant's own key through the merchant API (grace 0: the old key stops at once)."""
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, listed
    [key] = [k for k in listed["data"] if k["status"] == "active"]
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{key['id']}/roll", json={"grace_period": 0}, headers=merchant.headers
    )
    assert status in (200, 201), rolled
    return str(rolled["secret"])


async def test_demo_with_a_rolled_stack_key_says_the_key_in_stack_json_no_longer_works(
    stack: ServiceStack, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant(name="Demo Shop", prefix="demo")
    _write_stack(tmp_path, stack, merchant)
    new_secret = await _roll_over_the_api(stack, merchant)

    code, out, err = await _run_demo(tmp_path)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    message = err.strip().splitlines()[-1]
    assert message.startswith("paygate demo: "), err
    assert "no longer works" in message and str(tmp_path / "stack.json") in message, message
    assert "paygate up" in message, message  # how to fix it
    for secret in (merchant.api_key, new_secret):
        assert secret not in out and secret not in err
