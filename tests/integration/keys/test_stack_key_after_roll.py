"""The stack's own merchant key (stack.json's `merchant.api_key`, which `paygate demo`, `listen` and `pay` use)
after it is rolled: `paygate merchant keys roll` of that key writes the new secret into stack.json, and
`paygate listen` with a key that no longer works says so in one line instead of failing obscurely."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from support.cli import cli_env, run_paygate
from support.stack import Merchant, ServiceStack

pytestmark = pytest.mark.slow


async def _paygate(home: Path, *args: str) -> tuple[int, str, str]:
    return await run_paygate(cli_env(home), *args, timeout=60)


def _write_stack(home: Path, stack: ServiceStack, merchant: Merchant) -> Path:
    path = home / "stack.json"
    path.write_text(
        json.dumps(
            {
                "gateway_url": stack.base_url,
                "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
                "merchant": {"id": merchant.id, "api_key": merchant.api_key},
            }
        )
    )
    path.chmod(0o600)
    return path


async def _active_key_id(stack: ServiceStack, api_key: str) -> str:
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": api_key})
    assert status == 200, listed
    [key] = [k for k in listed["data"] if k["status"] == "active"]
    return str(key["id"])


async def test_rolling_the_stacks_own_key_with_the_cli_keeps_stack_json_working(
    stack: ServiceStack, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant(name="Up Shop", prefix="up")
    path = _write_stack(tmp_path, stack, merchant)
    key_id = await _active_key_id(stack, merchant.api_key)

    code, out, err = await _paygate(
        tmp_path, "merchant", "keys", "roll", "--merchant", merchant.id, "--key", key_id, "--json"
    )
    assert code == 0, err
    new_secret = json.loads(out)["secret"]
    assert new_secret != merchant.api_key and merchant.api_key not in out + err
    kept = json.loads(path.read_text())["merchant"]["api_key"]
    assert kept == new_secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in err and new_secret not in err  # says where, never the secret twice
    status, _ = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": kept})
    assert status == 200


async def test_rolling_another_key_leaves_stack_json_alone(stack: ServiceStack, tmp_path: Path) -> None:
    merchant = await stack.create_merchant(name="Up Shop", prefix="up")
    other = await stack.create_merchant(name="Other", prefix="other")
    path = _write_stack(tmp_path, stack, merchant)
    before = path.read_text()
    other_key = await _active_key_id(stack, other.api_key)

    code, _, err = await _paygate(
        tmp_path, "merchant", "keys", "roll", "--merchant", other.id, "--key", other_key, "--json"
    )
    assert code == 0, err
    assert path.read_text() == before


async def test_listen_with_a_rolled_stack_key_says_the_key_no_longer_works(
    stack: ServiceStack, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant(name="Up Shop", prefix="up")
    _write_stack(tmp_path, stack, merchant)
    key_id = await _active_key_id(stack, merchant.api_key)
    status, rolled = await stack.request(
        "POST", f"/v1/merchant_keys/{key_id}/roll", json={"grace_period": 0}, headers=merchant.headers
    )
    assert status in (200, 201), rolled

    code, out, err = await _paygate(tmp_path, "listen", "--forward-to", "http://127.0.0.1:9/hook")
    assert code == 1, out + err
    assert "Traceback" not in out + err
    message = err.strip().splitlines()[-1]
    assert message.startswith("paygate listen: ") and "no longer works" in message, err
    assert str(tmp_path / "stack.json") in message
    for secret in (merchant.api_key, str(rolled["secret"])):
        assert secret not in out + err
