"""Web3 refunds are checked on chain (issue 19, contract §8): a merchant who refunds a crypto payment names the
refund transaction, and the gateway reads it back from the session's chain before anything is recorded.

What a refund tx must be, all read from the node (nothing the merchant says is believed but the hash):
- on the session's chain (the node's chain id, and the tx's own EIP-155 chain id when it has one);
- mined with receipt status 1, with at least the session's `min_confirmations`;
- a transfer of the session's asset (the tx's own ETH value for a native-coin session; for a token, the
  ERC-20 `Transfer` logs emitted by the session's token contract itself: look-alike events of other
  contracts never count) FROM the session's deposit address, or from the one address the merchant declared
  for this refund (`from_address`: a wallet the merchant refunds from after sweeping the deposit address),
  TO an address that paid the session (the senders of its counted deposits);
- of at least the refund's amount (the sum of such transfers in the tx).

The chain is the proof that money went back to the payer; where it came from only ties the tx to the
merchant. A tx hash is one refund: the session service keeps that (see RefundSessionRequest.chain_tx_hash).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from web3 import AsyncWeb3
from web3.exceptions import TransactionNotFound
from web3.types import LogReceipt, TxData

from webhook_gateway.chain.verification import (
    NATIVE_LOG_INDEX,
    Transfer,
    _decode_transfer,
    _rpc_guard,
    confirmations,
    normalize_address,
    normalize_tx_hash,
)


class RefundTxRefused(Exception):
    """The tx does not prove the refund. `status` is the HTTP status (400: the tx can never prove it; 409: not
    yet, retry later) and `code` the stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RefundTransfer:
    """What a verified refund tx moved back to the payer, in the session's minor units (wei, token units)."""

    tx_hash: str
    chain_id: int
    block_number: int
    confirmations: int
    amount_minor: int
    transfers: tuple[Transfer, ...]


async def verify_refund_tx(
    w3: AsyncWeb3,
    tx_hash: str,
    *,
    expected_chain_id: int,
    token: str | None,
    sources: Iterable[str],
    payers: Iterable[str],
    min_amount_minor: int,
    min_confirmations: int,
) -> RefundTransfer:
    """Read `tx_hash` back and check it refunds at least `min_amount_minor` of the session's asset from one of
    `sources` to one of `payers`. Raises RefundTxRefused (bad or unconfirmed tx), InvalidArgument
    (`invalid_tx_hash`), ChainUnavailable (the node failed: nothing is decided)."""
    tx_hash = normalize_tx_hash(tx_hash)
    token_address = normalize_address(token, "token").lower() if token is not None else None
    from_ok = {normalize_address(a).lower() for a in sources}
    to_ok = {normalize_address(a).lower() for a in payers}
    with _rpc_guard():
        chain_id = await w3.eth.chain_id
        if chain_id != expected_chain_id:
            raise RefundTxRefused(
                400,
                "refund_tx_wrong_chain",
                f"the session is on chain {expected_chain_id}; this node is on chain {chain_id}",
            )
        try:
            tx = await w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            raise RefundTxRefused(
                400, "refund_tx_not_found", f"{tx_hash} is not a transaction on chain {expected_chain_id}"
            ) from None
        if tx.get("chainId") is not None and int(tx["chainId"]) != expected_chain_id:
            raise RefundTxRefused(
                400,
                "refund_tx_wrong_chain",
                f"the transaction was signed for chain {int(tx['chainId'])}, not {expected_chain_id}",
            )
        if tx.get("blockNumber") is None:
            raise _unconfirmed(0, min_confirmations)
        try:
            receipt = await w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            raise _unconfirmed(0, min_confirmations) from None
        head = await w3.eth.block_number
    if int(receipt["status"]) != 1:
        raise RefundTxRefused(
            400, "refund_tx_failed", "the transaction failed (receipt status 0): it moved nothing"
        )
    block_number = int(receipt["blockNumber"])
    confirmed = confirmations(head, block_number)
    if token_address is None:
        moved = _native_refund(tx, from_ok, to_ok)
    else:
        moved = tuple(_token_refund(receipt["logs"], token_address, from_ok, to_ok))
    amount = sum(t.amount_minor for t in moved)
    if amount < min_amount_minor or not moved:
        asset = "the session's token" if token_address else "ETH"
        raise RefundTxRefused(
            400,
            "refund_tx_no_matching_transfer",
            f"the transaction moves {amount} minor units of {asset} from the session's deposit address (or the "
            f"declared from_address) to the address that paid; the refund needs {min_amount_minor}",
        )
    # Checked last: a tx that can never prove the refund is refused for that, not asked to wait.
    if confirmed < max(1, min_confirmations):
        raise _unconfirmed(confirmed, min_confirmations)
    return RefundTransfer(
        tx_hash=tx_hash,
        chain_id=chain_id,
        block_number=block_number,
        confirmations=confirmed,
        amount_minor=amount,
        transfers=moved,
    )


def _unconfirmed(confirmed: int, needed: int) -> RefundTxRefused:
    return RefundTxRefused(
        409,
        "refund_tx_unconfirmed",
        f"the transaction has {confirmed} of {max(1, needed)} confirmations; send the same request again later",
    )


def _native_refund(tx: TxData, from_ok: set[str], to_ok: set[str]) -> tuple[Transfer, ...]:
    sender, to, value = str(tx.get("from") or "").lower(), str(tx.get("to") or "").lower(), int(tx["value"])
    if sender not in from_ok or to not in to_ok or value <= 0:
        return ()
    return (
        Transfer(
            log_index=NATIVE_LOG_INDEX,
            from_address=AsyncWeb3.to_checksum_address(sender),
            to_address=AsyncWeb3.to_checksum_address(to),
            amount_minor=value,
        ),
    )


def _token_refund(
    logs: Iterable[LogReceipt], token: str, from_ok: set[str], to_ok: set[str]
) -> Iterable[Transfer]:
    for log in logs:
        # The emitter is what makes a Transfer real: any contract can emit a Transfer-shaped event.
        if str(log["address"]).lower() != token or log.get("removed"):
            continue
        transfer = _decode_transfer(log)
        if (
            transfer is not None
            and transfer.from_address.lower() in from_ok
            and transfer.to_address.lower() in to_ok
        ):
            yield transfer
