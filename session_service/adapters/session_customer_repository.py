"""asyncpg write of a session's buyer (contract §9); reads go through session_repository."""

from __future__ import annotations

import json
import uuid
from typing import Any


async def set_customer(conn: Any, session_id: uuid.UUID, customer: dict[str, Any]) -> None:
    """Store the buyer (session_service.domain.customer.Customer.to_json()). Inside the caller's transaction,
    under its row lock."""
    await conn.execute(
        "UPDATE sessions SET customer = $2::jsonb WHERE id = $1", session_id, json.dumps(customer)
    )
