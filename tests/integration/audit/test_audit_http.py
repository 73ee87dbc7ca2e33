"""GET /v1/audit (contract §9): a merchant's audit entries of every service, newest first, with their chain
links, paged across services, and never another merchant's or (for objects with a mode) the other mode's."""

from __future__ import annotations

import itertools
import uuid

import asyncpg
import pytest

from paygate_runtime.cli.audit_cmd import verify
from support.stack import ServiceStack
from support.two_modes import (
    LIVE_SECRETS_ENV,
    create_session,
    fulfilled,
    send_onecom,
    two_mode_merchant,
)


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **LIVE_SECRETS_ENV}


async def _all_pages(stack: ServiceStack, headers: dict[str, str], limit: int) -> list[dict]:
    seen: list[dict] = []
    cursor = ""
    for _ in range(100):
        status, page = await stack.request(
            "GET",
            f"/v1/audit?limit={limit}" + (f"&starting_after={cursor}" if cursor else ""),
            headers=headers,
        )
        assert status == 200, page
        assert len(page["data"]) <= limit
        seen.extend(page["data"])
        if not page["has_more"]:
            return seen
        cursor = page["data"][-1]["id"]
    raise AssertionError("no last page")


async def test_a_paid_session_is_audited_by_every_service_and_listed_newest_first(
    stack: ServiceStack,
) -> None:
    owner = await two_mode_merchant(stack, "Owner", "own")
    stranger = await stack.create_merchant("Stranger", "str")
    session = await create_session(stack, owner.test)
    await send_onecom(stack, "test", session)
    await fulfilled(stack, owner.test, session["id"])
    other_session = await create_session(stack, stranger)
    # A row that names the session but not the merchant (the dispatcher's failed attempts) is the merchant's.
    conn = await asyncpg.connect(stack.db.runtime_dsn("session"))
    try:
        await conn.execute(
            """INSERT INTO session.audit_log (session_id, merchant_id, actor, action)
               VALUES ($1, NULL, 'dispatcher', 'fulfil_attempt_failed')""",
            uuid.UUID(session["id"]),
        )
    finally:
        await conn.close()

    status, listed = await stack.request("GET", "/v1/audit?limit=100", headers=owner.test.headers)
    assert status == 200, listed
    entries = listed["data"]
    assert listed["has_more"] is False
    services = {e["service"] for e in entries}
    assert services == {"session", "billing", "keys"}, entries
    about_session = [e for e in entries if e["service"] == "session" and e["object_id"] == session["id"]]
    assert about_session and all(e["mode"] == "test" for e in about_session)
    assert [e["actor"] for e in entries if e["action"] == "fulfil_attempt_failed"] == ["dispatcher"]
    invoice = [e for e in entries if e["service"] == "billing"]
    assert invoice[0]["action"] == "invoice_issued" and invoice[0]["mode"] == "test"
    keys_entries = [e for e in entries if e["service"] == "keys"]
    assert {e["object_type"] for e in keys_entries} >= {"merchant", "api_key"}
    for entry in entries:
        assert set(entry) == {
            "id",
            "object",
            "service",
            "action",
            "object_type",
            "object_id",
            "at",
            "actor",
            "mode",
            "sequence",
            "hash",
            "prev_hash",
            "canonical",
            "canonical_version",
        }
        assert len(entry["hash"]) == 64 and len(entry["prev_hash"]) == 64
    # Newest first: by time, then service, then row id.
    order = [(e["at"], e["service"], int(e["id"].rpartition("_")[2])) for e in entries]
    assert order == sorted(order, reverse=True)
    # Each service's entries are its chain for this merchant, links included. A key of one mode sees its mode's
    # and the merchant-wide entries: the live key's creation is in the keys chain, not in this list.
    for service in services:
        chain = sorted((e for e in entries if e["service"] == service), key=lambda e: e["sequence"])
        assert chain[0]["sequence"] == 1 and len({e["sequence"] for e in chain}) == len(chain)
        assert all(
            b["prev_hash"] == a["hash"]
            for a, b in itertools.pairwise(chain)
            if b["sequence"] == a["sequence"] + 1
        )

    # Paging across services gives the same list, in the same order.
    assert [e["id"] for e in await _all_pages(stack, owner.test.headers, 2)] == [e["id"] for e in entries]
    assert [e["id"] for e in await _all_pages(stack, owner.test.headers, 3)] == [e["id"] for e in entries]

    # Another merchant sees none of it; the owner's live key none of the test session's entries.
    status, theirs = await stack.request("GET", "/v1/audit?limit=100", headers=stranger.headers)
    assert status == 200
    assert not {e["id"] for e in theirs["data"]} & {e["id"] for e in entries}
    assert session["id"] not in str(theirs) and other_session["id"] in str(theirs)
    status, live = await stack.request("GET", "/v1/audit?limit=100", headers=owner.live.headers)
    assert status == 200
    assert session["id"] not in str(live)
    assert all(e["mode"] in (None, "live") for e in live["data"])
    assert any(e["object_type"] == "merchant" for e in live["data"])  # merchant-wide entries in both modes
    # Together the two modes' lists hold each chain whole.
    for service in services:
        both = {e["sequence"] for e in entries + live["data"] if e["service"] == service}
        assert both == set(range(1, len(both) + 1)), service

    # And the whole database verifies.
    results, problems = await verify(stack.db.admin_dsn, ["session", "keys", "billing"], [])
    assert all(r.ok for r in results) and not problems


async def test_bad_cursors_and_limits_are_4xx(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant("Cursor", "cur")
    stranger = await stack.create_merchant("Stranger", "str")
    status, listed = await stack.request("GET", "/v1/audit", headers=stranger.headers)
    assert status == 200 and listed["data"], listed
    foreign = listed["data"][0]["id"]
    for query, expected, code in (
        ("?starting_after=nope", 400, "invalid_starting_after"),
        ("?starting_after=session_0", 400, "invalid_starting_after"),
        ("?starting_after=ledger_1", 400, "invalid_starting_after"),
        ("?limit=0", 400, "invalid_limit"),
        ("?limit=101", 400, "invalid_limit"),
        ("?starting_after=session_999999", 400, "invalid_starting_after"),
        (f"?starting_after={foreign}", 400, "invalid_starting_after"),  # another merchant's looks missing
    ):
        status, reply = await stack.request("GET", "/v1/audit" + query, headers=merchant.headers)
        assert (status, reply["error"]["code"]) == (expected, code), (query, reply)
    status, reply = await stack.request("GET", "/v1/audit")
    assert status == 401
