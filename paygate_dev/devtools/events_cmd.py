"""`paygate events`: the webhook inbox for operators.

    paygate events --unmatched      events that name a session nobody knows (no merchant to show them to)
    paygate events [--status S]     the latest events of every merchant

It reads the gateway schema with the stack's database URL from $PAYGATE_HOME/stack.json (a local stack's
superuser), because unmatched events belong to no merchant and so are not visible through the API.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import asyncpg

from paygate_runtime.database_errors import DATABASE_ERRORS, describe
from paygate_runtime.stack import load_stack
from webhook_gateway.adapters.inbox_repository import STATUSES, InboxEvent, InboxRepository


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unmatched", action="store_true", help="only events for sessions nobody knows")
    p.add_argument("--status", choices=sorted(STATUSES), help="only events in this status")
    p.add_argument("--limit", type=int, default=50, help="at most this many events (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--database-url", help="override stack.json's database_url")


def _row(event: InboxEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "received_at": event.received_at.isoformat(),
        "provider": event.provider,
        "event_id": event.event_id,
        "type": event.event_type,
        "status": event.status,
        "outcome": event.outcome,
        "session_id": event.session_id,
        "merchant_id": event.merchant_id,
        "attempts": event.attempts,
        "last_error": event.last_error,
    }


def render_table(events: list[InboxEvent]) -> str:
    if not events:
        return "no events"
    lines = [
        f"{'received_at':<20} {'provider':<8} {'event_id':<32} {'type':<40} {'status':<11} session / error"
    ]
    for e in events:
        detail = e.session_id or "-"
        if e.outcome or e.last_error:
            detail += f"  {e.outcome or ''} {e.last_error or ''}".rstrip()
        lines.append(
            f"{e.received_at.strftime('%Y-%m-%d %H:%M:%S'):<20} {e.provider:<8} {e.event_id[:32]:<32} "
            f"{e.event_type[:40]:<40} {e.status:<11} {detail}  (attempts {e.attempts})"
        )
    return "\n".join(lines)


async def list_events(
    database_url: str, *, unmatched: bool, status: str | None, limit: int
) -> list[InboxEvent]:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "gateway"})
    try:
        repo = InboxRepository(conn)
        if unmatched:
            events = await repo.list_unmatched(limit=limit)
            return [e for e in events if status is None or e.status == status]
        return await repo.list_recent(limit=limit, status=status)
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        print("paygate: --limit must be between 1 and 1000", file=sys.stderr)
        return 2
    database_url = args.database_url or load_stack().get("database_url")
    if not database_url:
        print("paygate: stack.json has no database_url; pass --database-url", file=sys.stderr)
        return 1
    try:
        events = asyncio.run(
            list_events(database_url, unmatched=args.unmatched, status=args.status, limit=args.limit)
        )
    except DATABASE_ERRORS as exc:
        print(f"paygate: cannot read the inbox: {describe(exc)}", file=sys.stderr)
        return 1
    if args.json:
        for event in events:
            print(json.dumps(_row(event)))
    else:
        print(render_table(events))
    return 0
