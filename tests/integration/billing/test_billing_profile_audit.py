"""Billing-profile changes join the hash-chained billing audit (contract §9): PUT /v1/billing_profile over real
HTTP -> gRPC -> Postgres, then GET /v1/audit and `paygate audit verify`."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from paygate_runtime.cli.audit_cmd import verify
from support.stack import Merchant, ServiceStack

CHANGE = {
    "seller": {"name": "Acme GmbH", "tax_id": "DE123456789", "address": {"lines": ["Hauptstr. 1"], "country": "DE"}},
    "invoice_prefix": "ACME",
    "tax_rate_bps": 1900,
    "reset_numbering_yearly": True,
}  # fmt: skip


async def _own_key_id(stack: ServiceStack, merchant: Merchant) -> str:
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200 and len(listed["data"]) == 1, listed
    return str(listed["data"][0]["id"])


async def _profile_entries(stack: ServiceStack, merchant: Merchant) -> list[dict[str, Any]]:
    status, listed = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.headers)
    assert status == 200, listed
    return [e for e in listed["data"] if e["action"] == "billing_profile_updated"]


async def test_a_profile_change_is_audited_with_the_key_and_the_chain_verifies(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    key_id = await _own_key_id(stack, merchant)

    status, body = await stack.request("PUT", "/v1/billing_profile", json=CHANGE, headers=merchant.headers)
    assert status == 200, body

    entries = await _profile_entries(stack, merchant)
    assert len(entries) == 1, entries
    entry = entries[0]
    assert (entry["service"], entry["actor"], entry["mode"]) == ("billing", f"merchant_key:{key_id}", "test")
    assert entry["object_type"] == "billing_profile" and entry["object_id"], entry

    # The audit row commits to the version row, which holds the profile as it was written.
    conn = await stack.db.admin()
    try:
        row = await conn.fetchrow(
            """SELECT v.profile, v.actor, v.mode FROM billing.billing_audit a
                 JOIN billing.billing_profile_versions v ON v.id = a.related_id
                WHERE a.id = $1""",
            int(entry["id"].removeprefix("billing_")),
        )
    finally:
        await conn.close()
    assert row is not None
    profile = json.loads(row["profile"])
    assert (profile["seller_name"], profile["seller_tax_id"], profile["invoice_prefix"]) == (
        "Acme GmbH",
        "DE123456789",
        "ACME",
    )
    assert (profile["tax_rate_bps"], profile["reset_numbering_yearly"]) == (1900, True)
    assert (row["actor"], row["mode"]) == (f"merchant_key:{key_id}", "test")

    results, problems = await verify(stack.db.admin_dsn, ["billing"], [])
    assert all(r.ok for r in results) and not problems, (results, problems)


async def test_a_put_that_changes_nothing_writes_nothing(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    # A first PUT that only restates the defaults changes nothing either.
    status, body = await stack.request("PUT", "/v1/billing_profile", json={}, headers=merchant.headers)
    assert status == 200, body
    assert await _profile_entries(stack, merchant) == []

    for _ in range(2):
        status, body = await stack.request(
            "PUT", "/v1/billing_profile", json={"tax_rate_bps": 700}, headers=merchant.headers
        )
        assert status == 200, body
    status, body = await stack.request(
        "PUT", "/v1/billing_profile", json={"tax_rate_bps": 0}, headers=merchant.headers
    )
    assert status == 200, body
    entries = await _profile_entries(stack, merchant)
    assert len(entries) == 2, entries  # 0 -> 700 and 700 -> 0; the repeated 700 wrote nothing

    results, problems = await verify(stack.db.admin_dsn, ["billing"], [])
    assert all(r.ok for r in results) and not problems, (results, problems)


async def test_the_profile_versions_are_append_only(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    status, body = await stack.request("PUT", "/v1/billing_profile", json=CHANGE, headers=merchant.headers)
    assert status == 200, body
    conn = await stack.db.admin()
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM billing.billing_profile_versions WHERE merchant_id = $1", merchant.id
        )
        assert count == 1
        for statement in (
            "UPDATE billing.billing_profile_versions SET actor = 'someone else' WHERE merchant_id = $1",
            "DELETE FROM billing.billing_profile_versions WHERE merchant_id = $1",
        ):
            # Even the superuser: the append-only trigger refuses it until dropped or disabled explicitly.
            with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="append-only"):
                await conn.execute(statement, merchant.id)
    finally:
        await conn.close()
