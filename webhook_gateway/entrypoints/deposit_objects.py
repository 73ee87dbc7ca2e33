"""The API object of a chain deposit (contract §6a), shown by the deposits route and the dashboard."""

from __future__ import annotations

from typing import Any

from webhook_gateway.chain.deposits_repository import DepositRow


def deposit_stage(row: DepositRow, head: int | None, needed: int) -> tuple[str, int]:
    """(stage, confirmations) of one recorded transfer, against the watcher's last head."""
    if not row.canonical:
        return "reorged_out", 0
    confirmations = max(0, (head if head is not None else row.block_number) - row.block_number + 1)
    return ("confirmed" if confirmations >= needed else "seen"), confirmations


def deposit_json(
    row: DepositRow, head: int | None, needed: int, *, session_asset: tuple[str, int] | None = None
) -> dict[str, Any]:
    """`session_asset` (the session's currency and exponent) labels rows recorded before each row kept its
    asset: those were all in the session's own asset."""
    stage, confirmations = deposit_stage(row, head, needed)
    currency, exponent = row.currency, row.exponent
    if currency is None and session_asset is not None:
        currency, exponent = session_asset
    return {
        "chain_id": row.chain_id,
        "tx_hash": row.tx_hash,
        "log_index": row.log_index,
        # top-level: the tx's own value; internal: a contract call's value (node traces); token: an ERC-20
        # Transfer log.
        "kind": "token" if row.log_index >= 0 else ("native" if row.log_index == -1 else "native_internal"),
        "token": row.token,
        # The asset that arrived. Another asset than the session's own (ETH to a token session, another of
        # the merchant's tokens) never counts towards it: it is reported as `wrong_asset` and quarantined.
        "currency": currency,
        "exponent": exponent,
        "from": row.from_address,
        "to": row.deposit_address,
        # An exact JSON integer (token amounts exceed 2^53: read it as a big integer).
        "amount_minor": row.amount_minor,
        "block_number": row.block_number,
        "block_hash": row.block_hash,
        "block_timestamp": row.block_timestamp,
        "stage": stage,
        "confirmations": confirmations,
        "canonical": row.canonical,
        "source": row.source,
        "counted_in_payment": row.claimed,
        # "late", "extra" or "wrong_asset": sent on its own and quarantined by the session service.
        "reported_as": row.reported_as,
    }
