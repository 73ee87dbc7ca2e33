"""The audit entries about a quarantine entry belong to the entry's mode, like the entry itself.

A test-mode event about a live session is quarantined in the test world (`mode_mismatch`), and a test key may
resolve that entry. The audit entries of both (`event_quarantined`, `quarantine_resolved`) once took the
session's mode: the test key's own decision showed only in the live audit, which it cannot read, and the live
world's audit told of an event its quarantine list does not have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from support.database import TestDatabase
from support.stack import ServiceStack
from support.two_modes import (
    TwoModeMerchant,
    create_session,
    final_inbox_row,
    send_stripe,
    two_mode_merchant,
    two_mode_stack,
)


@pytest.fixture(scope="module")
async def stack(database: TestDatabase) -> AsyncIterator[ServiceStack]:
    async with two_mode_stack(database) as services:
        yield services


@pytest.fixture(scope="module")
async def merchant(stack: ServiceStack) -> TwoModeMerchant:
    return await two_mode_merchant(stack, "Audit Modes", "auditmodes")


async def audit_actions(
    stack: ServiceStack, merchant: TwoModeMerchant, mode: str, session_id: str
) -> list[str]:
    status, body = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.key(mode).headers)
    assert status == 200, body
    entries: list[dict[str, Any]] = body["data"]
    return sorted(
        e["action"] for e in entries if e["object_id"] == session_id and "quarantine" in e["action"]
    )


@pytest.mark.parametrize(("event_mode", "session_mode"), [("test", "live"), ("live", "test")])
async def test_a_cross_mode_quarantine_is_audited_in_the_world_of_its_entry(
    stack: ServiceStack, merchant: TwoModeMerchant, event_mode: str, session_mode: str
) -> None:
    session = await create_session(
        stack, merchant.key(session_mode), amount="12.00", currency="EUR", provider="stripe"
    )
    event_id = await send_stripe(stack, event_mode, session)
    row = await final_inbox_row(stack, "stripe", event_id)
    assert (row["status"], row["outcome"]) == ("quarantined", "mode_mismatch"), row

    status, listed = await stack.request(
        "GET", f"/v1/quarantine?session_id={session['id']}", headers=merchant.key(event_mode).headers
    )
    assert status == 200 and len(listed["data"]) == 1, listed
    entry = listed["data"][0]
    status, resolved = await stack.request(
        "POST",
        f"/v1/quarantine/{entry['id']}/resolve",
        json={"decision": "dismissed", "note": "sent by the wrong mode"},
        headers=merchant.key(event_mode).headers,
    )
    assert status == 200, resolved

    assert await audit_actions(stack, merchant, event_mode, session["id"]) == [
        "event_quarantined",
        "quarantine_resolved",
    ]
    assert await audit_actions(stack, merchant, session_mode, session["id"]) == []
