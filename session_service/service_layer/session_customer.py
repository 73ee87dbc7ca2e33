"""SetSessionCustomer: the buyer's name and country the checkout page asked for (contract §9).

A live session's invoice names its buyer; when the merchant created the session without one, the checkout
page asks the customer before showing the pay buttons. Only while the session is open (created or pending:
once paid, the invoice is issued from what the session had), and only the fields the session lacks: a value
the merchant gave is never overwritten, so a customer cannot rename the buyer a merchant set.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from paygate_runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from session_service.adapters import session_customer_repository as customer_repo
from session_service.adapters import session_repository as repo
from session_service.domain.customer import Customer, customer_from_json, fill_missing
from session_service.domain.states import SessionStatus
from session_service.service_layer.sessions import parse_uuid

OPEN = (SessionStatus.CREATED.value, SessionStatus.PENDING.value)


async def set_session_customer(
    pool: asyncpg.Pool, session_id: str, merchant_id: str, mode: str | None, given: Customer | None
) -> repo.Record:
    """The session with its buyer filled in. NOT_FOUND outside the caller's merchant and mode;
    INVALID_ARGUMENT `missing_customer` when nothing is given; FAILED_PRECONDITION `session_not_open`."""
    merchant = parse_uuid(merchant_id, "merchant_id")
    sid = parse_uuid(session_id, "session_id", not_found="session_not_found")
    if given is None:
        raise InvalidArgument("missing_customer", "customer is required", field="customer")
    async with pool.acquire() as conn:
        async with conn.transaction():
            row = await repo.load_for_caller(conn, merchant, mode, sid, lock=True)
            if row is None:
                raise NotFound("session_not_found", "no such session")
            if row["status"] not in OPEN:
                raise FailedPrecondition(
                    "session_not_open", f"the session is {row['status']}; its buyer can no longer change"
                )
            current = customer_from_json(_json(row["customer"]))
            merged = fill_missing(current, given)
            if merged != current:
                await customer_repo.set_customer(conn, sid, merged.to_json())
                before = current.to_json() if current is not None else {}
                filled = sorted(k for k, v in merged.to_json().items() if v and not before.get(k))
                # Which fields were filled, never their values: the audit names no personal data.
                await repo.write_audit(conn, sid, merchant, "checkout", "customer_set", {"filled": filled})
        row = await repo.get_session(conn, sid)
    assert row is not None
    return row


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
