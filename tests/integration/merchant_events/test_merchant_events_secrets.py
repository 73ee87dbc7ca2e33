"""Endpoint signing secrets are encrypted at rest (PAYGATE_SESSION_ENCRYPTION_KEYS): the database never holds
a plain secret, deliveries still verify with the reference library, and rotating the encryption key (new
version first) keeps older rows readable. Plain rows from before migration 0100 are sealed at start."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any

import pytest
from merchant_events_support import FAST_ENV, Receiver, create_endpoint, eventually, paid_session
from standardwebhooks.webhooks import Webhook

from support.stack import ServiceStack


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **FAST_ENV}


async def _row(stack: ServiceStack, endpoint_id: str) -> dict[str, Any]:
    conn = await stack.db.admin()
    try:
        row = await conn.fetchrow(
            "SELECT * FROM session.webhook_endpoints WHERE id = $1", uuid.UUID(endpoint_id)
        )
    finally:
        await conn.close()
    assert row is not None
    return dict(row)


async def _previous(stack: ServiceStack, endpoint_id: str) -> list[bytes]:
    """The sealed previous secrets of an endpoint (migration 0220), newest first."""
    conn = await stack.db.admin()
    try:
        rows = await conn.fetch(
            """SELECT secret_sealed FROM session.webhook_endpoint_previous_secrets
                WHERE endpoint_id = $1 ORDER BY seq DESC""",
            uuid.UUID(endpoint_id),
        )
    finally:
        await conn.close()
    return [bytes(r["secret_sealed"]) for r in rows]


def _holds(row: dict[str, Any], secret: str) -> bool:
    """Whether any column holds the secret (or its key bytes), as text or inside a blob."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    for value in row.values():
        data = bytes(value) if isinstance(value, (bytes, memoryview)) else str(value).encode()
        if secret.encode() in data or secret.removeprefix("whsec_").encode() in data or key in data:
            return True
    return False


async def _restart_session(stack: ServiceStack, encryption_keys: str | None = None) -> None:
    if encryption_keys is not None:
        stack.env["PAYGATE_SESSION_ENCRYPTION_KEYS"] = encryption_keys
    # The gateway too: a fresh channel, rather than waiting out gRPC's reconnect backoff.
    await stack.stop_service("gateway")
    await stack.stop_service("session")
    await stack.start_service("session")
    await stack.start_service("gateway")


async def _delivered(receiver: Receiver, count: int) -> None:
    async def enough() -> bool:
        return len(receiver.deliveries) >= count

    await eventually(enough, timeout=30)


async def test_the_database_never_holds_the_plain_secret_and_deliveries_verify(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    row = await _row(stack, endpoint["id"])
    assert row["secret"] is None and row["previous_secret"] is None
    assert row["secret_sealed"] is not None and row["secret_sealed"][0] == 1  # key version 1
    assert not _holds(row, endpoint["secret"])

    status, rolled = await stack.request(
        "POST", f"/v1/webhook_endpoints/{endpoint['id']}/roll_secret", headers=merchant.headers
    )
    assert status == 200, rolled
    row = await _row(stack, endpoint["id"])
    assert row["secret"] is None and row["previous_secret"] is None
    previous = await _previous(stack, endpoint["id"])
    assert len(previous) == 1
    assert not _holds(row, endpoint["secret"]) and not _holds(row, rolled["secret"])
    assert not _holds({"previous": previous[0]}, endpoint["secret"])

    await paid_session(stack, merchant)
    await _delivered(receiver, 1)
    delivery = receiver.deliveries[0]
    Webhook(endpoint["secret"]).verify(delivery.body, delivery.headers)
    Webhook(rolled["secret"]).verify(delivery.body, delivery.headers)


async def test_rotating_the_encryption_key_keeps_old_rows_readable(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    old_key = stack.env["PAYGATE_SESSION_ENCRYPTION_KEYS"]  # one bare key: version 1
    before = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])

    # Rotation as documented: the new version is added (and seals from now on), the old one stays to open.
    new_key = base64.b64encode(secrets.token_bytes(32)).decode()
    await _restart_session(stack, f"1:{old_key},2:{new_key}")
    status, rolled = await stack.request(
        "POST", f"/v1/webhook_endpoints/{before['id']}/roll_secret", headers=merchant.headers
    )
    assert status == 200, rolled
    row = await _row(stack, before["id"])
    assert row["secret_sealed"][0] == 2 and (await _previous(stack, before["id"]))[0][0] == 1

    await paid_session(stack, merchant)
    await _delivered(receiver, 1)
    delivery = receiver.deliveries[0]
    # The v1 blob (the previous secret) and the v2 blob (the new one) both opened and both signed.
    Webhook(before["secret"]).verify(delivery.body, delivery.headers)
    Webhook(rolled["secret"]).verify(delivery.body, delivery.headers)

    # Without the version that sealed a row, its delivery is refused and logged, never sent unsigned.
    await _restart_session(stack, f"2:{new_key}")
    await paid_session(stack, merchant)

    async def refused() -> list:
        _, page = await stack.request(
            "GET", f"/v1/webhook_deliveries?endpoint={before['id']}", headers=merchant.headers
        )
        return [a for a in page["data"] if (a.get("error") or "").startswith("signing_secret_unavailable")]

    await eventually(refused, timeout=30)
    assert len(receiver.deliveries) == 1


async def test_plain_rows_from_before_the_migration_are_sealed_at_start(
    stack: ServiceStack, receiver: Receiver
) -> None:
    merchant = await stack.create_merchant()
    endpoint = await create_endpoint(stack, merchant, receiver.url, ["session.paid"])
    # What a row written before migration 0100 looks like: the secret in the plain column only.
    plain = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    conn = await stack.db.admin()
    try:
        await conn.execute(
            "UPDATE session.webhook_endpoints SET secret = $2, secret_sealed = NULL WHERE id = $1",
            uuid.UUID(endpoint["id"]),
            plain,
        )
    finally:
        await conn.close()

    await _restart_session(stack)
    row = await _row(stack, endpoint["id"])
    assert row["secret"] is None and row["secret_sealed"] is not None
    assert not _holds(row, plain)

    await paid_session(stack, merchant)
    await _delivered(receiver, 1)
    Webhook(plain).verify(receiver.deliveries[0].body, receiver.deliveries[0].headers)
