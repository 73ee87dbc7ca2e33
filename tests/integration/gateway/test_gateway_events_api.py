"""GET /v1/events, POST /v1/events/{id}/replay, `paygate events --unmatched` and `paygate trigger`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from gateway_webhook_support import (
    FAST_RELAY_ENV,
    create_session,
    inbox_event,
    send_stripe,
    session_of,
    stripe_event,
    wait_for_status,
    wait_until,
)

from paygate_dev.devtools import events_cmd, trigger_cmd
from paygate_dev.devtools.stripe_fixtures import ONECOM_EVENT_TYPES, build_stripe_event
from support.stack import ServiceStack
from webhook_gateway.providers.stripe_webhooks import STRIPE_EVENT_TYPES

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_RELAY_ENV}


def stack_facts(stack: ServiceStack) -> dict[str, Any]:
    """What `paygate up` writes to stack.json, for this in-process stack."""
    return {
        "gateway_url": stack.base_url,
        "grpc": {name: stack.addr(name) for name in ("session", "billing", "keys")},
        "database_url": stack.db.admin_dsn,
        "webhook_secrets": {
            "stripe": stack.env["PAYGATE_STRIPE_WEBHOOK_SECRETS"],
            "onecom": stack.env["PAYGATE_ONECOM_WEBHOOK_SECRETS"],
            "web3": stack.env["PAYGATE_WEB3_WEBHOOK_SECRETS"],
        },
    }


async def test_merchant_lists_own_events_with_status_and_pages(stack: ServiceStack) -> None:
    alice = await stack.create_merchant("Alice", "alice")
    bob = await stack.create_merchant("Bob", "bob")
    sessions = [await create_session(stack, alice) for _ in range(3)]
    events = [stripe_event("payment_intent.succeeded", s) for s in sessions]
    for event in events:
        await send_stripe(stack, event)
    mismatch = stripe_event("payment_intent.succeeded", await create_session(stack, alice), amount_minor=1)
    await send_stripe(stack, mismatch)
    for event in events:
        await wait_for_status(stack, "stripe", event["id"], {"applied"})
    await wait_for_status(stack, "stripe", mismatch["id"], {"quarantined"})

    status, page = await stack.request("GET", "/v1/events?limit=2", headers=alice.headers)
    assert status == 200, page
    assert page["has_more"] is True and len(page["data"]) == 2
    status, rest = await stack.request(
        "GET", f"/v1/events?limit=10&starting_after={page['data'][-1]['id']}", headers=alice.headers
    )
    assert status == 200 and rest["has_more"] is False
    listed = page["data"] + rest["data"]
    assert len({e["id"] for e in listed}) == 4
    by_event = {e["event_id"]: e for e in listed}
    assert {by_event[e["id"]]["status"] for e in events} == {"applied"}
    assert by_event[mismatch["id"]]["status"] == "quarantined"
    assert by_event[mismatch["id"]]["outcome"] == "amount_mismatch"
    assert by_event[mismatch["id"]]["final"] is True

    status, filtered = await stack.request("GET", "/v1/events?status=quarantined", headers=alice.headers)
    assert status == 200 and [e["event_id"] for e in filtered["data"]] == [mismatch["id"]]

    status, others = await stack.request("GET", "/v1/events", headers=bob.headers)
    assert status == 200 and others["data"] == []

    for query, code in [("limit=0", "invalid_limit"), ("status=nope", "invalid_status")]:
        status, body = await stack.request("GET", f"/v1/events?{query}", headers=alice.headers)
        assert (status, body["error"]["code"]) == (400, code)
    status, body = await stack.request(
        "GET", f"/v1/events?starting_after={uuid.uuid4()}", headers=alice.headers
    )
    assert (status, body["error"]["code"]) == (400, "invalid_starting_after")
    status, body = await stack.request("GET", "/v1/events")
    assert status == 401


async def test_replay_applies_an_unfinished_event_once(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    other = await stack.create_merchant("Other", "other")
    session = await create_session(stack, merchant)
    event = stripe_event("payment_intent.succeeded", session)
    # Slow retries, so that the replay and not the relay applies the event after the outage.
    await stack.stop_service("gateway")
    stack.env["PAYGATE_WEBHOOK_RETRY_BASE_MS"] = "60000"
    stack.env["PAYGATE_WEBHOOK_RETRY_MAX_MS"] = "60000"
    await stack.start_service("gateway")
    await stack.stop_service("session")
    try:
        status, _ = await send_stripe(stack, event)
        assert status == 200
        await asyncio.sleep(0.3)
    finally:
        await stack.start_service("session")
    row = await inbox_event(stack, "stripe", event["id"])
    assert row is not None and row["status"] == "received"
    inbox_id = str(row["id"])

    # Its merchant is not known yet (the apply never answered); it is theirs because it names their session.
    async def replay_by_other() -> tuple[int, Any] | None:
        reply = await stack.request("POST", f"/v1/events/{inbox_id}/replay", headers=other.headers)
        # 503 while the gateway's channel to the restarted session service reconnects.
        return None if reply[0] == 503 else reply

    status, body = await wait_until(replay_by_other, timeout=15, what="the session service to be reachable")
    assert (status, body["error"]["code"]) == (404, "not_found")

    status, body = await stack.request("POST", f"/v1/events/{inbox_id}/replay", headers=merchant.headers)
    assert status == 200, body
    assert body["status"] == "applied" and body["final"] is True
    assert (await session_of(stack, merchant, session["id"]))["status"] == "paid"

    status, body = await stack.request("POST", f"/v1/events/{inbox_id}/replay", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (409, "event_already_final")
    paid = await session_of(stack, merchant, session["id"])
    assert [m["to"] for m in paid["history"]].count("paid") == 1

    status, body = await stack.request("POST", f"/v1/events/{uuid.uuid4()}/replay", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await stack.request("POST", "/v1/events/not-a-uuid/replay", headers=merchant.headers)
    assert (status, body["error"]["code"]) == (404, "not_found")

    # The one replay that ran is in the merchant's audit trail, as the key that asked; the refused ones
    # (another merchant's, already final, unknown) wrote nothing.
    status, listed = await stack.request("GET", "/v1/merchant_keys", headers=merchant.headers)
    assert status == 200, listed
    key_id = listed["data"][0]["id"]
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT merchant_id, session_id, actor, detail FROM session.audit_log
                WHERE action = 'inbox_event_replayed' ORDER BY chain_seq"""
        )
    finally:
        await conn.close()
    assert len(rows) == 1, rows
    assert str(rows[0]["merchant_id"]) == merchant.id and str(rows[0]["session_id"]) == session["id"]
    assert rows[0]["actor"] == f"merchant_key:{key_id}"
    detail = json.loads(rows[0]["detail"])
    assert detail == {
        "object_type": "inbox_event",
        "object_id": inbox_id,
        "mode": "test",
        "provider": "stripe",
        "provider_event_id": event["id"],
        "provider_event_type": "payment_intent.succeeded",
        "inbox_status": "received",
    }
    status, audit = await stack.request("GET", "/v1/audit?limit=100", headers=merchant.headers)
    assert status == 200, audit
    assert [a["action"] for a in audit["data"]].count("inbox_event_replayed") == 1


async def test_events_unmatched_lists_events_for_unknown_sessions(
    stack: ServiceStack, tmp_path: Path
) -> None:
    merchant = await stack.create_merchant()
    known = stripe_event("payment_intent.succeeded", await create_session(stack, merchant))
    ghost_session = str(uuid.uuid4())
    ghost = build_stripe_event("payment_intent.succeeded", ghost_session, 500, "EUR")
    await send_stripe(stack, known)
    await send_stripe(stack, ghost)
    await wait_for_status(stack, "stripe", known["id"], {"applied"})
    await wait_for_status(stack, "stripe", ghost["id"], {"quarantined"}, timeout=15)

    events = await events_cmd.list_events(stack.db.admin_dsn, unmatched=True, status=None, limit=50)
    assert [(e.event_id, e.session_id, e.outcome) for e in events] == [
        (ghost["id"], ghost_session, "unknown_session")
    ]
    table = events_cmd.render_table(events)
    assert ghost["id"] in table and ghost_session in table

    home = _write_stack_json(stack, tmp_path)
    result = await asyncio.to_thread(_paygate, home, "events", "--unmatched", "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(line["event_id"], line["status"]) for line in lines] == [(ghost["id"], "quarantined")]


async def test_trigger_sends_every_contract_event_type(stack: ServiceStack) -> None:
    merchant = await stack.create_merchant()
    facts = stack_facts(stack)
    cases = [("stripe", t) for t in STRIPE_EVENT_TYPES] + [("onecom", t) for t in ONECOM_EVENT_TYPES]
    parser = argparse.ArgumentParser()
    trigger_cmd.configure(parser)
    for provider, event_type in cases:
        session = await create_session(stack, merchant, provider=provider)
        args = parser.parse_args([provider, event_type, "--session", session["id"]])
        assert await trigger_cmd.trigger(args, facts) == 0, (provider, event_type)
    rows = {(r["provider"], r["event_type"]) for r in await _all_rows(stack)}
    assert rows == set(cases)


async def test_trigger_command_pays_a_session(stack: ServiceStack, tmp_path: Path) -> None:
    merchant = await stack.create_merchant()
    session = await create_session(stack, merchant, amount="9.99", currency="EUR")
    home = _write_stack_json(stack, tmp_path)
    result = await asyncio.to_thread(
        _paygate, home, "trigger", "stripe", "payment_intent.succeeded", "--session", session["id"]
    )
    assert result.returncode == 0, result.stderr
    assert "HTTP 200" in result.stdout and '"received": true' in result.stdout
    event_id = next(word for word in result.stdout.split() if word.startswith("evt_"))
    await wait_for_status(stack, "stripe", event_id, {"applied"})
    assert (await session_of(stack, merchant, session["id"]))["status"] == "paid"

    # An explicit wrong amount is sent as given and quarantined, never applied.
    other = await create_session(stack, merchant, amount="9.99", currency="EUR")
    result = await asyncio.to_thread(
        _paygate, home, "trigger", "onecom", "payment.succeeded", "--session", other["id"], "--amount", "1.00"
    )
    assert result.returncode == 0, result.stderr
    result = await asyncio.to_thread(
        _paygate, home, "trigger", "stripe", "payment_intent.succeeded", "--session", str(uuid.uuid4())
    )
    assert result.returncode == 1 and "pass --amount and --currency" in result.stderr


async def _all_rows(stack: ServiceStack) -> list[dict[str, Any]]:
    conn = await stack.db.admin()
    try:
        return [dict(r) for r in await conn.fetch("SELECT provider, event_type FROM gateway.inbox_events")]
    finally:
        await conn.close()


def _write_stack_json(stack: ServiceStack, home: Path) -> Path:
    (home / "stack.json").write_text(json.dumps(stack_facts(stack)))
    return home


def _paygate(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env["PAYGATE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("dsn", ["not-a-dsn", "postgresql://paygate:s3cret-pw@127.0.0.1:port/paygate"])
def test_paygate_events_with_a_malformed_database_url_is_one_line(tmp_path: Path, dsn: str) -> None:
    """A walk of README's command table: an unreachable database was one line, a malformed DSN a traceback."""
    result = _paygate(tmp_path, "events", "--database-url", dsn)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate: cannot read the inbox: "), lines
    assert "s3cret-pw" not in result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize(
    "argv",
    [
        ("stripe", "checkout.session.completed"),
        ("onecom", "payment.succeeded", "--amount", "1.00", "--currency", "EUR"),
    ],
)
def test_paygate_trigger_with_the_stack_stopped_says_so(tmp_path: Path, argv: tuple[str, ...]) -> None:
    """A walk of README's command table: with `up` stopped and its stack.json left behind, `trigger` said
    "cannot read session ... (unavailable); pass --amount and --currency", and passing them only changed the
    advice away. It now says that nothing answers and where."""
    (tmp_path / "stack.json").write_text(
        json.dumps(
            {
                "gateway_url": "http://127.0.0.1:9",
                "grpc": {name: "127.0.0.1:9" for name in ("session", "billing", "keys")},
                "webhook_secrets": {"stripe": "whsec_x", "onecom": "whsec_" + "A" * 44},
            }
        )
    )
    result = _paygate(tmp_path, "trigger", *argv, "--session", str(uuid.uuid4()))
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "paygate: cannot reach the session service at 127.0.0.1:9 (unavailable); is `paygate up` running?"
    ], lines
    assert result.returncode == 1
