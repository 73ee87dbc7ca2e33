"""`paygate merchant create` and `paygate merchant keys list|create|roll|revoke` as real subprocesses against a
real keys service (found through PAYGATE_KEYS_ADDR, as in a cluster, and through stack.json, as with
`paygate up`); the keys they print work against the real gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.cli import cli_env, run_paygate
from support.stack import Merchant, ServiceStack, free_ports

pytestmark = pytest.mark.slow


async def _paygate(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    return await run_paygate(env, "merchant", *args, timeout=60)


async def _json(env: dict[str, str], *args: str) -> Any:
    code, out, err = await _paygate(env, *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def _status(stack: ServiceStack, key: str) -> int:
    status, _ = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": key})
    return status


async def test_operator_commands_over_keys_addr(stack: ServiceStack) -> None:
    env = cli_env(PAYGATE_KEYS_ADDR=stack.addr("keys"))
    made = await _json(env, "create", "--name", "Corner Shop", "--mode", "live")
    merchant_id, live_secret = made["merchant_id"], made["secret"]
    assert live_secret.startswith("sk_live_") and await _status(stack, live_secret) == 200

    test_key = await _json(env, "keys", "create", "--merchant", merchant_id, "--mode", "test")
    assert test_key["secret"].startswith("sk_test_") and test_key["mode"] == "test"
    assert await _status(stack, test_key["secret"]) == 200
    _, listing = await stack.request("GET", "/v1/merchant_keys", headers={"X-API-Key": test_key["secret"]})
    assert [k["id"] for k in listing["data"]] == [test_key["id"]]  # the test key sees test keys only

    listed = await _json(env, "keys", "list", "--merchant", merchant_id)
    assert {k["mode"] for k in listed["keys"]} == {"test", "live"} and len(listed["keys"]) == 2
    assert live_secret not in json.dumps(listed) and test_key["secret"] not in json.dumps(listed)
    code, out, _ = await _paygate(env, "keys", "list", "--merchant", merchant_id, "--mode", "live")
    assert code == 0 and len(out.strip().splitlines()) == 1 and "sk_live_" in out and live_secret not in out

    rolled = await _json(
        env, "keys", "roll", "--merchant", merchant_id, "--key", test_key["id"], "--grace-period", "600"
    )
    assert rolled["previous"]["status"] == "expiring" and rolled["secret"].startswith("sk_test_")
    assert await _status(stack, test_key["secret"]) == 200 and await _status(stack, rolled["secret"]) == 200

    revoked = await _json(env, "keys", "revoke", "--merchant", merchant_id, "--key", test_key["id"])
    assert revoked["status"] == "revoked" and await _status(stack, test_key["secret"]) == 401

    # Refusals: the last active key, an unknown key, a bad grace period. Exit 1 (2 for usage), one line.
    code, _, err = await _paygate(env, "keys", "revoke", "--merchant", merchant_id, "--key", rolled["id"])
    assert code == 1 and "last_key" in err
    code, _, err = await _paygate(env, "keys", "revoke", "--merchant", merchant_id, "--key", "junk")
    assert code == 1 and "not_found" in err
    code, _, err = await _paygate(
        env, "keys", "roll", "--merchant", merchant_id, "--key", rolled["id"], "--grace-period", "604801"
    )
    assert code == 2 and "grace-period" in err
    assert await _status(stack, rolled["secret"]) == 200

    conn = await stack.db.admin()
    try:
        actors = await conn.fetch(
            """SELECT event_type, details->>'actor' AS actor FROM keys.audit_events
                WHERE object_type = 'merchant_secret_key' AND event_type <> 'MERCHANT_SECRET_KEY_CREATED'
                   OR details->>'actor' = 'operator:cli'"""
        )
    finally:
        await conn.close()
    assert {r["event_type"] for r in actors} == {
        "MERCHANT_CREATED",
        "MERCHANT_SECRET_KEY_CREATED",
        "MERCHANT_SECRET_KEY_ROLLED",
        "MERCHANT_SECRET_KEY_REVOKED",
    }
    assert {r["actor"] for r in actors} == {"operator:cli"}


async def test_commands_find_the_stack_through_stack_json(stack: ServiceStack, tmp_path: Path) -> None:
    (tmp_path / "stack.json").write_text(json.dumps({"grpc": {"keys": stack.addr("keys")}}))
    env = cli_env(PAYGATE_HOME=str(tmp_path))
    code, out, err = await _paygate(env, "create", "--name", "Shop")
    assert code == 0, err
    lines = dict(
        line.split(None, 2)[1:] for line in out.splitlines() if line.startswith(("merchant id", "secret key"))
    )
    secret = lines["key"]
    assert secret.startswith("sk_test_") and await _status(stack, secret) == 200
    merchant = Merchant(lines["id"], secret, "Shop")
    code, out, err = await _paygate(env, "keys", "list", "--merchant", merchant.id)
    assert code == 0 and "active" in out and secret[-4:] in out and secret not in out


async def test_listing_the_keys_of_an_unknown_merchant_is_not_found(stack: ServiceStack) -> None:
    """A walk of README's command table: `keys list` of a mistyped merchant id printed "no keys" and exit 0,
    while `keys create` of it said not_found. A merchant without keys of a mode still lists "no keys"."""
    env = cli_env(PAYGATE_KEYS_ADDR=stack.addr("keys"))
    code, out, err = await _paygate(env, "keys", "list", "--merchant", "00000000-0000-4000-8000-000000000000")
    assert (code, out, err.strip()) == (1, "", "paygate: not_found: merchant not found")
    made = await _json(env, "create", "--name", "Test Only")
    code, out, err = await _paygate(env, "keys", "list", "--merchant", made["merchant_id"], "--mode", "live")
    assert (code, out.strip()) == (0, "no keys"), err


async def test_merchant_create_is_audited_with_its_actor(stack: ServiceStack) -> None:
    """README: every change is written to the keys audit log with its actor. A walk of the command table found
    `merchant create`'s two entries (the merchant and its first key) written without one, while `keys create`,
    `roll` and `revoke` record `operator:cli`."""
    env = cli_env(PAYGATE_KEYS_ADDR=stack.addr("keys"))
    made = await _json(env, "create", "--name", "Audited Shop")
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT event_type, details->>'actor' AS actor FROM keys.audit_events
                WHERE merchant_id = $1 ORDER BY id""",
            made["merchant_id"],
        )
    finally:
        await conn.close()
    assert [(r["event_type"], r["actor"]) for r in rows] == [
        ("MERCHANT_CREATED", "operator:cli"),
        ("MERCHANT_SECRET_KEY_CREATED", "operator:cli"),
    ]


@pytest.mark.parametrize("found_through", ["PAYGATE_KEYS_ADDR", "stack.json"])
async def test_an_unreachable_keys_service_is_said_in_one_line(tmp_path: Path, found_through: str) -> None:
    """A walk of README's command table: with a stale stack.json (a stopped `up`) or a wrong PAYGATE_KEYS_ADDR,
    `paygate merchant ...` printed gRPC's raw text ("UNAVAILABLE: failed to connect to all addresses; ...").
    Now one line names the address and asks whether `paygate up` is running, as `trigger` and `listen` do."""
    address = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    if found_through == "stack.json":
        (tmp_path / "stack.json").write_text(json.dumps({"grpc": {"keys": address}}))
        env = cli_env(PAYGATE_HOME=str(tmp_path))
    else:
        env = cli_env(PAYGATE_HOME=str(tmp_path), PAYGATE_KEYS_ADDR=address)
    for command in (["create", "--name", "Shop"], ["keys", "list", "--merchant", "m_1"]):
        code, out, err = await _paygate(env, *command)
        lines = err.strip().splitlines()
        assert (code, out) == (1, ""), (code, out, err)
        assert len(lines) == 1 and lines[0].startswith(
            f"paygate: cannot reach the keys service at {address}"
        ), lines
        assert lines[0].endswith("is `paygate up` running?") and "UNAVAILABLE" not in lines[0], lines
