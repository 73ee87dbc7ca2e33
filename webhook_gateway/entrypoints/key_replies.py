"""Headers of the key routes' replies (customer keys and merchant secret keys): never cached, and a replay is
marked as sessions, refunds and webhook endpoints mark one."""

from __future__ import annotations

from typing import Final

NO_STORE: Final[dict[str, str]] = {"Cache-Control": "no-store"}


def key_reply_headers(idempotency_key: str, secret: str) -> dict[str, str]:
    """`Idempotent-Replayed: true` on an idempotent replay of a create or a roll.

    The keys service's replies carry no replay flag; the secret they leave empty on a replay is the documented
    marker (keys.proto: "Empty on an idempotent replay"; a merchant key create's replay is answered the same way
    by keys_service merchants.create_secret_key), read here rather than adding a flag to the protos. A first
    create or roll always mints a secret, and without an Idempotency-Key nothing can be a replay."""
    if idempotency_key and not secret:
        return {**NO_STORE, "Idempotent-Replayed": "true"}
    return dict(NO_STORE)
