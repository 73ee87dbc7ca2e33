"""`paygate trace <session id>`: one session's timeline from the database, for when no tracing backend exists.

An OPERATOR tool, like `paygate audit verify`: it reads every service's schema (gateway, session, billing,
keys) with the operator's DSN, by default the `database_url` of a running `paygate up` stack
($PAYGATE_HOME/stack.json), or `--database-url` (a role that may read all four schemas, e.g. the database
owner). It only reads; the services are not asked. A table that does not exist in this deployment (merchant
events, refunds, chain deposits) is skipped.

What it prints, oldest first: the session's creation and every status move, each provider event the gateway
received (with the W3C trace id stored with it when tracing was on, to find the trace in a backend), what the
session service decided for it, the fulfilment outbox rows and their attempts, each fulfilment step (invoice,
customer key, access token), the invoice in billing, the keys service's audit events, the customer mail, and
merchant event deliveries. Times are UTC; `--json` prints the same entries as JSON lines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from paygate_runtime.database_errors import DATABASE_ERRORS, describe
from paygate_runtime.stack import load_stack, paygate_home


@dataclass(frozen=True)
class Entry:
    at: datetime
    service: str
    what: str
    detail: str = ""
    trace_id: str = ""


def trace_id_of(traceparent: str | None) -> str:
    """The trace id of a W3C traceparent ("00-<trace id>-<span id>-<flags>"), or ""."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else ""


Source = Callable[[asyncpg.Connection, uuid.UUID], Awaitable[list[Entry]]]


def _minor(value: Any) -> str:
    """A NUMERIC amount in minor units as plain digits: asyncpg may read 10**16 as Decimal('1E+16')."""
    return str(int(value))


async def _exists(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def _has_column(conn: asyncpg.Connection, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(
        await conn.fetchval(
            """SELECT EXISTS (SELECT 1 FROM information_schema.columns
                               WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)""",
            schema,
            name,
            column,
        )
    )


async def _session(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    row = await conn.fetchrow("SELECT * FROM session.sessions WHERE id = $1", sid)
    if row is None:
        return []
    amount = f"{_minor(row['amount_minor'])} minor units of {row['currency']} (exponent {row['exponent']})"
    entries = [
        Entry(
            row["created_at"],
            "session",
            "session created",
            f"merchant {row['merchant_id']}, {row['mode']}, {row['provider']}, {amount}",
        )
    ]
    for h in await conn.fetch("SELECT * FROM session.session_history WHERE session_id = $1 ORDER BY id", sid):
        note = f" ({h['note']})" if h["note"] else ""
        entries.append(
            Entry(
                h["at"],
                "session",
                f"status {h['from_status']} -> {h['to_status']}",
                f"{h['source_event_id']}{note}",
            )
        )
    return entries


async def _inbox(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    if not await _exists(conn, "gateway.inbox_events"):
        return []
    traced = await _has_column(conn, "gateway.inbox_events", "traceparent")
    rows = await conn.fetch(
        f"""SELECT provider, event_id, event_type, received_at, status, outcome, attempts, last_error, updated_at,
                   source, {"traceparent" if traced else "NULL::text AS traceparent"}
              FROM gateway.inbox_events WHERE session_id = $1 ORDER BY received_at""",
        sid,
    )
    entries = []
    for r in rows:
        trace_id = trace_id_of(r["traceparent"])
        via = "" if r["source"] == "webhook" else f" (from {r['source']})"
        entries.append(
            Entry(
                r["received_at"],
                "gateway",
                f"{r['provider']} event received{via}",
                f"{r['event_type']} {r['event_id']}",
                trace_id,
            )
        )
        if r["status"] != "received":
            error = f", last error: {r['last_error']}" if r["last_error"] else ""
            entries.append(
                Entry(
                    r["updated_at"],
                    "gateway",
                    f"event {r['status']}",
                    f"{r['event_id']}: {r['outcome'] or '-'} after {r['attempts']} attempt(s){error}",
                    trace_id,
                )
            )
        else:
            entries.append(
                Entry(
                    r["updated_at"],
                    "gateway",
                    "event waiting for the relay",
                    f"{r['event_id']}: {r['attempts']} attempt(s), last error: {r['last_error'] or '-'}",
                    trace_id,
                )
            )
    return entries


async def _decisions(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    entries = [
        Entry(
            r["processed_at"],
            "session",
            "event decided",
            f"{r['provider']}:{r['provider_event_id']} -> {r['outcome']}",
        )
        for r in await conn.fetch(
            "SELECT * FROM session.processed_events WHERE session_id = $1 ORDER BY processed_at", sid
        )
    ]
    for q in await conn.fetch("SELECT * FROM session.quarantine WHERE session_id = $1", sid):
        entries.append(
            Entry(q["created_at"], "session", "quarantined", f"{q['reason']} ({q['status']}) entry {q['id']}")
        )
    return entries


async def _outbox(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    traced = await _has_column(conn, "session.outbox", "traceparent")
    rows = await conn.fetch(
        f"""SELECT kind, status, attempts, last_error, created_at, done_at, next_attempt_at,
                   {"traceparent" if traced else "NULL::text AS traceparent"}
              FROM session.outbox WHERE session_id = $1 ORDER BY id""",
        sid,
    )
    entries = []
    for r in rows:
        trace_id = trace_id_of(r["traceparent"])
        entries.append(Entry(r["created_at"], "session", f"outbox {r['kind']} queued", "", trace_id))
        if r["done_at"] is not None:
            entries.append(
                Entry(
                    r["done_at"],
                    "session",
                    f"outbox {r['kind']} {r['status']}",
                    f"after {r['attempts']} attempt(s)",
                    trace_id,
                )
            )
        else:
            entries.append(
                Entry(
                    r["next_attempt_at"],
                    "session",
                    f"outbox {r['kind']} pending (next attempt)",
                    f"{r['attempts']} attempt(s) so far, last error: {r['last_error'] or '-'}",
                    trace_id,
                )
            )
    return entries


# Audit actions already shown from their own tables.
_SHOWN_ELSEWHERE = frozenset({"session_created"})


async def _audit(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    return [
        Entry(r["at"], "session", f"{r['actor']}: {r['action']}", _compact(r["detail"]))
        for r in await conn.fetch("SELECT * FROM session.audit_log WHERE session_id = $1 ORDER BY id", sid)
        if r["action"] not in _SHOWN_ELSEWHERE
    ]


async def _refunds(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    if not await _exists(conn, "session.refunds"):
        return []
    rows = await conn.fetch(
        """SELECT id, status, origin, amount_minor, currency, provider_refund_id, created_at
             FROM session.refunds WHERE session_id = $1 ORDER BY created_at""",
        sid,
    )
    moves = await _refund_moves(conn, sid)
    entries: list[Entry] = []
    for r in rows:
        entries.extend(refund_entries(r, moves.get(str(r["id"]), [])))
    return entries


@dataclass(frozen=True)
class RefundMove:
    """A refund's status as an audit row recorded it, at that row's time."""

    at: datetime
    status: str
    failure_reason: str | None = None


async def _refund_moves(conn: asyncpg.Connection, sid: uuid.UUID) -> dict[str, list[RefundMove]]:
    """Each refund's status changes, oldest first, from the session's audit rows: every write of a refund
    (its request, the provider's reports) is audited with the refund's status then, in `detail.refunds`.
    `refunds.updated_at` cannot date them: any later write touches it (a credit note, a repeated report)."""
    moves: dict[str, list[RefundMove]] = {}
    for row in await conn.fetch(
        """SELECT at, detail FROM session.audit_log
            WHERE session_id = $1 AND jsonb_typeof(detail -> 'refunds') = 'array' ORDER BY id""",
        sid,
    ):
        detail = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
        for refund in detail["refunds"]:
            seen = moves.setdefault(str(refund.get("id")), [])
            status = str(refund.get("status"))
            if not seen or seen[-1].status != status:
                seen.append(RefundMove(row["at"], status, refund.get("failure_reason")))
    return moves


def refund_entries(refund: Mapping[str, Any], moves: Sequence[RefundMove]) -> list[Entry]:
    """A refund's lines, each saying what happened at its time: its creation (with its status then, when an
    audit row says it), then each later status at the time its audit row was written. A status no audit row
    dates is put at no time: the refund's last line says it once, as the status now."""
    label = f"refund ({refund['origin']})"
    money = f"{_minor(refund['amount_minor'])} minor units of {refund['currency']}"
    detail = f"{money}, provider refund {refund['provider_refund_id'] or '-'}"
    # The first audit row naming the refund is its creation's: every write of a refund is audited but a
    # no-op report, and a creation is never one. (Its `at` is clock_timestamp(), a little after created_at.)
    at_creation = moves[0].status if moves else None
    later = moves[1:]
    created = f"{label} created, {at_creation}" if at_creation else f"{label} created"
    entries = [Entry(refund["created_at"], "session", created, detail)]
    entries.extend(
        Entry(move.at, "session", f"{label} {move.status}", _refund_outcome_detail(money, move))
        for move in later
    )
    if (moves[-1].status if moves else None) != refund["status"]:
        entries[-1] = replace(entries[-1], detail=entries[-1].detail + _now(refund["status"]))
    return entries


def _now(status: str) -> str:
    return f"; status now: {status} (when it changed is not recorded)"


def _refund_outcome_detail(money: str, move: RefundMove) -> str:
    return f"{money}, reason {move.failure_reason}" if move.failure_reason else money


async def _merchant_events(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    if not await _exists(conn, "session.merchant_events"):
        return []
    entries = [
        Entry(r["created_at"], "session", f"merchant event {r['type']}", r["id"])
        for r in await conn.fetch(
            """SELECT id, type, created_at FROM session.merchant_events
                WHERE object_kind = 'session' AND object_id = $1 ORDER BY seq""",
            str(sid),
        )
    ]
    if await _exists(conn, "session.webhook_delivery_attempts"):
        for r in await conn.fetch(
            """SELECT a.* FROM session.webhook_delivery_attempts a
                 JOIN session.merchant_events e ON e.id = a.event_id
                WHERE e.object_kind = 'session' AND e.object_id = $1 ORDER BY a.id""",
            str(sid),
        ):
            outcome = "delivered" if r["delivered"] else f"failed ({r['status_code'] or r['error'] or '-'})"
            entries.append(
                Entry(
                    r["at"],
                    "session",
                    f"merchant webhook {outcome}",
                    f"{r['event_type']} {r['event_id']} to endpoint {r['endpoint_id']}, attempt {r['attempt']}, "
                    f"{r['latency_ms']} ms",
                )
            )
    return entries


async def _billing(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    if not await _exists(conn, "billing.invoices"):
        return []
    return [
        Entry(
            r["issued_at"],
            "billing",
            f"{r['kind'].replace('_', ' ')} issued",
            f"{r['number']} ({r['status']}), total {_minor(r['total'])} minor units of {r['currency']}",
        )
        for r in await conn.fetch(
            "SELECT kind, number, status, total, currency, issued_at FROM billing.invoices WHERE session_id = $1",
            str(sid),
        )
    ]


async def _keys(conn: asyncpg.Connection, sid: uuid.UUID) -> list[Entry]:
    if not await _exists(conn, "keys.audit_events"):
        return []
    return [
        Entry(r["occurred_at"], "keys", r["event_type"].lower(), f"{r['object_type']} {r['object_id']}")
        for r in await conn.fetch("SELECT * FROM keys.audit_events WHERE session_id = $1 ORDER BY id", sid)
    ]


SOURCES: tuple[Source, ...] = (
    _session,
    _inbox,
    _decisions,
    _outbox,
    _audit,
    _refunds,
    _merchant_events,
    _billing,
    _keys,
)


class SessionNotFound(LookupError):
    pass


async def timeline(dsn: str, session_id: str) -> list[Entry]:
    """Every entry of the session's timeline, oldest first. Raises SessionNotFound."""
    try:
        sid = uuid.UUID(session_id)
    except ValueError:
        raise SessionNotFound(f"not a session id: {session_id!r}") from None
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        # One snapshot for all reads: the timeline is consistent even while the services keep working.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if await conn.fetchval("SELECT count(*) FROM session.sessions WHERE id = $1", sid) == 0:
                raise SessionNotFound(f"no session {session_id}")
            entries: list[Entry] = []
            for source in SOURCES:
                entries.extend(await source(conn, sid))
    finally:
        await conn.close()
    return sorted(entries, key=lambda e: e.at)


def _compact(value: Any) -> str:
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def format_entry(entry: Entry) -> str:
    at = entry.at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{entry.at.microsecond // 1000:03d}Z"
    line = f"{at}  {entry.service:<8} {entry.what}"
    if entry.detail:
        line += f"  {entry.detail}"
    if entry.trace_id:
        line += f"  [trace {entry.trace_id}]"
    return line


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("session_id", help="the session's id")
    p.add_argument(
        "--home", help="state folder of a `paygate up` stack (default $PAYGATE_HOME or ./.paygate)"
    )
    p.add_argument(
        "--database-url",
        help="operator DSN that can read all four schemas (default: the running stack's database_url)",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line instead of text")


def run(args: argparse.Namespace) -> int:
    dsn = args.database_url or load_stack(paygate_home(args.home))["database_url"]
    try:
        entries = asyncio.run(timeline(dsn, args.session_id))
    except SessionNotFound as error:
        print(f"paygate trace: {error}", file=sys.stderr)
        return 1
    except DATABASE_ERRORS as error:
        print(f"paygate trace: cannot read the database: {describe(error)}", file=sys.stderr)
        return 1
    for entry in entries:
        if args.json:
            print(json.dumps({**asdict(entry), "at": entry.at.isoformat()}, default=str))
        else:
            print(format_entry(entry))
    return 0
