"""Chain-truth checks over JSON-RPC: what a transaction really paid, and what new blocks paid.

A notifier's webhook only names a tx hash; everything else (chain, status, recipient, amount, block) is
read back from the node here. The webhook path (`inspect_transaction`) and the watcher (`scan_blocks`)
both end in `ObservedTransfer`s keyed on (chain id, tx hash, log index), so the ledger cannot tell, and
need not care, which path saw a transfer first.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, TypedDict

import aiohttp
from eth_typing import ChecksumAddress, HexStr
from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, ProviderConnectionError, TransactionNotFound, Web3RPCError
from web3.types import BlockData, FilterParams, LogReceipt, RPCEndpoint, TxData

from paygate_runtime.errors import InvalidArgument
from paygate_runtime.money.assets import NATIVE_DECIMALS

# keccak256("Transfer(address,address,uint256)")
TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
NATIVE_LOG_INDEX = -1
# Keeps one eth_getLogs topic filter well under the size limits common RPC providers enforce.
_ADDRESSES_PER_LOG_QUERY = 500
_TX_HASH = re.compile(r"^0x[0-9a-fA-F]{64}$")
_METHOD_NOT_FOUND = -32601  # JSON-RPC 2.0


class ChainUnavailable(Exception):
    """The RPC node could not answer (down, timing out, internal error). Retry later; it is not bad input."""


class BlockUntraceable(Exception):
    """The node answered for the chain but not for this one block's traces (an error reply for it, or its
    trace call timing out): that block's trouble, which must not stop the blocks around it."""

    def __init__(self, number: int, error: str) -> None:
        super().__init__(f"trace_block {number}: {error}")
        self.number = number
        self.error = error


# The JSON of a Parity-style trace (trace_block), as far as it is read here. Total=False: nodes omit fields.
TraceAction = TypedDict("TraceAction", {"callType": str, "from": str, "to": str, "value": str}, total=False)


class Trace(TypedDict, total=False):
    transactionHash: str
    traceAddress: list[int]
    type: str
    action: TraceAction
    error: str


class InternalTransfer(NamedTuple):
    """A contract-internal ETH transfer to a watched address, from a trace."""

    tx_hash: str
    log_index: int
    from_address: ChecksumAddress
    to_address: ChecksumAddress
    amount_minor: int


@dataclass(frozen=True)
class Transfer:
    """Money that one transaction moved to the deposit address. `log_index` is -1 for the native coin."""

    log_index: int
    from_address: str
    to_address: str
    amount_minor: int


@dataclass(frozen=True)
class ObservedTransfer:
    """One credit to a watched address, as the chain reports it. Key: (chain_id, tx_hash, log_index)."""

    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    block_timestamp: int
    token: str | None
    from_address: str
    to_address: str
    amount_minor: int
    # The asset's currency code and decimals, when the caller knows them (stored with the ledger row).
    currency: str | None = None
    exponent: int | None = None


@dataclass(frozen=True)
class TxInspection:
    """What the chain says about one tx hash, relative to one deposit address and asset.

    `problem` names the first reason the tx does not pay the deposit address, or is None when it does
    (whether it has enough confirmations is the caller's policy).
    """

    tx_hash: str
    chain_id: int
    expected_chain_id: int
    found: bool
    mined: bool = False
    status: int | None = None
    block_number: int | None = None
    block_hash: str | None = None
    block_timestamp: int | None = None
    head: int | None = None
    confirmations: int = 0
    token: str | None = None
    decimals: int = NATIVE_DECIMALS
    transfers: tuple[Transfer, ...] = ()

    @property
    def chain_id_matches(self) -> bool:
        return self.chain_id == self.expected_chain_id

    @property
    def total_minor(self) -> int:
        return sum(t.amount_minor for t in self.transfers)

    @property
    def problem(self) -> str | None:
        if not self.chain_id_matches:
            return "wrong_chain_id"
        if not self.found:
            return "tx_not_found"
        if not self.mined:
            return "tx_not_mined"
        if self.status != 1:
            return "tx_reverted"
        if not self.transfers:
            return "no_transfer_to_deposit_address"
        return None

    def observed_transfers(self) -> list[ObservedTransfer]:
        """The transfers in the ledger's shape (empty unless the tx is mined, successful and pays)."""
        if self.problem is not None:
            return []
        assert self.block_number is not None and self.block_hash is not None
        assert self.block_timestamp is not None
        return [
            ObservedTransfer(
                chain_id=self.chain_id,
                tx_hash=self.tx_hash,
                log_index=t.log_index,
                block_number=self.block_number,
                block_hash=self.block_hash,
                block_timestamp=self.block_timestamp,
                token=self.token,
                from_address=t.from_address,
                to_address=t.to_address,
                amount_minor=t.amount_minor,
            )
            for t in self.transfers
        ]


def normalize_tx_hash(tx_hash: str) -> HexStr:
    """Lower-case 0x-prefixed 32-byte hex, or InvalidArgument(`invalid_tx_hash`)."""
    if not isinstance(tx_hash, str) or not _TX_HASH.match(tx_hash.strip()):
        raise InvalidArgument(
            "invalid_tx_hash", "tx_hash must be 0x followed by 64 hex digits", field="tx_hash"
        )
    return HexStr(tx_hash.strip().lower())


def normalize_address(address: str, field: str = "address") -> ChecksumAddress:
    """EIP-55 checksummed address, or InvalidArgument(`invalid_<field>`)."""
    try:
        return AsyncWeb3.to_checksum_address(address)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"invalid_{field}", f"{field} is not an Ethereum address", field=field) from exc


async def inspect_transaction(
    w3: AsyncWeb3,
    tx_hash: str,
    *,
    expected_chain_id: int,
    deposit_address: str,
    token: str | None,
    token_decimals: int | None = None,
) -> TxInspection:
    """Read `tx_hash` back from the chain and report what it paid into `deposit_address`.

    `token=None` means the chain's native coin: the tx's own `to` and `value` count (internal transfers
    from contract wallets do not show here; decide those by `native_balance_at`). For a token, only
    `Transfer` logs emitted by the token contract itself, with `to` = deposit address, count: anyone can
    deploy a contract that emits a look-alike Transfer event. Raises ChainUnavailable if the node fails.
    """
    tx_hash = normalize_tx_hash(tx_hash)
    deposit = normalize_address(deposit_address, "deposit_address")
    token_address = normalize_address(token, "token") if token is not None else None
    decimals = NATIVE_DECIMALS if token_address is None else (token_decimals or 0)
    with _rpc_guard():
        chain_id = await w3.eth.chain_id
        base = TxInspection(
            tx_hash=tx_hash,
            chain_id=chain_id,
            expected_chain_id=expected_chain_id,
            found=False,
            token=token_address,
            decimals=decimals,
        )
        # A node on another chain knows nothing true about this chain's money; don't look further.
        if chain_id != expected_chain_id:
            return base
        try:
            tx = await w3.eth.get_transaction(tx_hash)
        except TransactionNotFound:
            return base
        if tx.get("chainId") is not None and int(tx["chainId"]) != expected_chain_id:
            return replace(base, found=True, chain_id=int(tx["chainId"]))
        if tx.get("blockNumber") is None:
            return replace(base, found=True)
        try:
            receipt = await w3.eth.get_transaction_receipt(tx_hash)
        except TransactionNotFound:
            return replace(base, found=True)
        head = await w3.eth.block_number
        block = await w3.eth.get_block(receipt["blockHash"])
    block_number = int(receipt["blockNumber"])
    status = int(receipt["status"])
    transfers: tuple[Transfer, ...] = ()
    if status == 1:
        if token_address is None:
            transfers = _native_transfers(tx, deposit)
        else:
            transfers = tuple(_token_transfers(receipt["logs"], token_address, {deposit.lower()}))
    return replace(
        base,
        found=True,
        mined=True,
        status=status,
        block_number=block_number,
        block_hash=_hex(receipt["blockHash"]),
        block_timestamp=int(block["timestamp"]),
        head=head,
        confirmations=confirmations(head, block_number),
        transfers=transfers,
    )


def confirmations(head: int, block_number: int) -> int:
    """head − block + 1: a tx in the head block has one confirmation; a block above head has none."""
    return max(0, head - block_number + 1)


def confirmed_height(head: int, min_confirmations: int) -> int:
    """The highest block with at least `min_confirmations` confirmations (head − confirmations + 1)."""
    return head - max(1, min_confirmations) + 1


async def native_balance_at(w3: AsyncWeb3, address: str, block_number: int) -> int:
    """The native-coin balance of `address` at `block_number`, in wei.

    Contract wallets and exchanges pay through internal calls that no tx's `to` shows, so a native-coin
    session is decided by the deposit address's balance at the confirmed height. Needs an archive-capable
    node for old blocks (anvil keeps all state).
    """
    with _rpc_guard():
        return int(await w3.eth.get_balance(normalize_address(address), block_identifier=block_number))


def internal_log_index(trace_position: int) -> int:
    """The ledger key of a contract-internal ETH transfer: -2 - its position in the tx's trace list (-1 is the
    tx's own top-level value, token transfers keep their log index >= 0)."""
    return -2 - trace_position


async def node_offers_traces(w3: AsyncWeb3) -> bool:
    """Whether the node answers `trace_block` (Parity/OpenEthereum-style traces: anvil, Erigon, Nethermind,
    reth). Asked once; a node without it leaves the balance difference as the stand-in for internal moves."""
    try:
        head = await w3.eth.block_number
        reply = await w3.provider.make_request(RPCEndpoint("trace_block"), [hex(head)])
    except (aiohttp.ClientError, OSError, TimeoutError, ProviderConnectionError) as exc:
        raise ChainUnavailable(f"RPC node unreachable: {exc}") from exc
    except Exception:
        return False
    # A raw request answers a JSON-RPC error in the reply instead of raising.
    return isinstance(reply, Mapping) and "error" not in reply and isinstance(reply.get("result"), list)


async def block_traces(w3: AsyncWeb3, number: int) -> list[Trace]:
    """The node's `trace_block` of one block. Raises BlockUntraceable when the node answers an error for that
    block, no trace list, or times out on it; ChainUnavailable when the node cannot be reached at all."""
    try:
        reply = await w3.provider.make_request(RPCEndpoint("trace_block"), [hex(number)])
    except TimeoutError as exc:
        # A block too heavy to trace in time times out every time: that block's trouble. A node that is down
        # fails the next block read too, and that fails the whole pass (nothing is recorded then).
        raise BlockUntraceable(number, "the trace call timed out") from exc
    except Web3RPCError as exc:
        raise BlockUntraceable(number, str(exc)[:300]) from exc
    except (aiohttp.ClientError, OSError, ProviderConnectionError) as exc:
        raise ChainUnavailable(f"RPC node unreachable: {exc}") from exc
    error = reply.get("error")
    if error is not None:
        if isinstance(error, Mapping) and error.get("code") == _METHOD_NOT_FOUND:
            # Not this block's trouble: the node traces no block at all (traces were forced on a node
            # without them). Every pass fails until the setting is fixed, as it says.
            raise ChainUnavailable(
                "the node has no trace_block: set PAYGATE_CHAIN_INTERNAL_TRANSFERS to balance or auto"
            )
        message = error.get("message") if isinstance(error, Mapping) else error
        raise BlockUntraceable(number, str(message)[:300])
    result = reply.get("result")
    if not isinstance(result, list):
        raise BlockUntraceable(number, "trace_block answered no trace list")
    return result


def internal_transfers(traces: Sequence[Trace], watched: set[str]) -> list[InternalTransfer]:
    """Every successful contract-internal call that moved ETH to a `watched` address. A call that failed, or
    sits below a failed call, moved nothing (its state was undone); the top-level call (empty traceAddress)
    is the tx's own value, found from the tx itself."""
    found: list[InternalTransfer] = []
    by_tx: dict[str, list[Trace]] = {}
    for trace in traces:
        tx_hash = trace.get("transactionHash")
        if tx_hash:
            by_tx.setdefault(_hex(tx_hash), []).append(trace)
    for tx_hash, tx_traces in by_tx.items():
        failed = [tuple(t.get("traceAddress") or ()) for t in tx_traces if t.get("error")]
        for position, trace in enumerate(tx_traces):
            address = tuple(trace.get("traceAddress") or ())
            action: TraceAction = trace.get("action") or {}
            if not address or trace.get("type") != "call" or action.get("callType") not in ("call", None):
                # delegatecall/staticcall/callcode move no ETH of their own to `to`.
                continue
            if any(address[: len(prefix)] == prefix for prefix in failed):
                continue
            to = str(action.get("to") or "").lower()
            value = int(str(action.get("value") or "0x0"), 16)
            if value <= 0 or to not in watched:
                continue
            found.append(
                InternalTransfer(
                    tx_hash.lower(),
                    internal_log_index(position),
                    AsyncWeb3.to_checksum_address(str(action.get("from") or "")),
                    AsyncWeb3.to_checksum_address(to),
                    value,
                )
            )
    return found


@dataclass(frozen=True)
class UntracedBlock:
    """A block of a scan whose traces the node refused: its internal transfers are unknown."""

    number: int
    block_hash: str
    block_timestamp: int
    error: str
    # The watched addresses (lower-case) that sent a tx in the block: their balance may fall as well as rise.
    senders: frozenset[str]


@dataclass(frozen=True)
class BlockScan:
    """What `scan_range` found: the transfers, the blocks it could not trace, and those it did trace."""

    transfers: list[ObservedTransfer]
    untraced: list[UntracedBlock]
    traced: frozenset[int]


async def scan_blocks(
    w3: AsyncWeb3,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    tokens: Iterable[str],
    *,
    traces: bool = False,
) -> list[ObservedTransfer]:
    """The transfers of `scan_range`; a block the node cannot trace raises ChainUnavailable here."""
    scan = await scan_range(w3, from_block, to_block, addresses, tokens, traces=traces)
    if scan.untraced:
        first = scan.untraced[0]
        raise ChainUnavailable(f"trace_block {first.number}: {first.error}")
    return scan.transfers


async def scan_range(
    w3: AsyncWeb3,
    from_block: int,
    to_block: int,
    addresses: Iterable[str],
    tokens: Iterable[str],
    *,
    traces: bool = False,
    skip_traces: Collection[int] = (),
    any_token: bool = False,
) -> BlockScan:
    """Every credit to `addresses` in blocks [from_block, to_block]: native-coin txs and the `Transfer`
    logs of `tokens` (with `any_token`, of every contract: the caller decides which emitters it knows), and
    with `traces` the contract-internal ETH transfers the node's `trace_block` shows.
    Reverted txs are skipped. Results are ordered by (block, log index), native first.

    A block whose traces the node refuses is reported in `untraced` (its top-level and token transfers are
    still found); the blocks in `skip_traces` (known untraceable, waiting for their retry) are not traced.
    """
    watched = {normalize_address(a).lower() for a in addresses}
    token_set = sorted({normalize_address(t, "token") for t in tokens})
    if not watched or to_block < from_block:
        return BlockScan([], [], frozenset())
    found: list[ObservedTransfer] = []
    untraced: list[UntracedBlock] = []
    traced: set[int] = set()
    with _rpc_guard():
        chain_id = await w3.eth.chain_id
        blocks: dict[str, BlockData] = {}
        for number in range(from_block, to_block + 1):
            block = await w3.eth.get_block(number, full_transactions=True)
            blocks[_hex(block["hash"])] = block
            senders: set[str] = set()
            for tx in _full_transactions(block):
                sender = str(tx.get("from") or "").lower()
                if sender in watched:
                    senders.add(sender)
                to = tx.get("to")
                if not to or to.lower() not in watched or int(tx["value"]) <= 0:
                    continue
                # A reverted tx moves no value, though it still sits in the block with its `value` set.
                receipt = await w3.eth.get_transaction_receipt(tx["hash"])
                if int(receipt["status"]) != 1:
                    continue
                found.append(
                    ObservedTransfer(
                        chain_id=chain_id,
                        tx_hash=_hex(tx["hash"]),
                        log_index=NATIVE_LOG_INDEX,
                        block_number=int(block["number"]),
                        block_hash=_hex(block["hash"]),
                        block_timestamp=int(block["timestamp"]),
                        token=None,
                        from_address=AsyncWeb3.to_checksum_address(tx["from"]),
                        to_address=AsyncWeb3.to_checksum_address(to),
                        amount_minor=int(tx["value"]),
                    )
                )
            if traces and number not in skip_traces:
                try:
                    found.extend(await _traced_transfers(w3, chain_id, block, watched))
                except BlockUntraceable as exc:
                    untraced.append(
                        UntracedBlock(
                            number=number,
                            block_hash=_hex(block["hash"]),
                            block_timestamp=int(block["timestamp"]),
                            error=exc.error,
                            senders=frozenset(senders),
                        )
                    )
                else:
                    traced.add(number)
        if token_set or any_token:
            watched_list = sorted(watched)
            for start in range(0, len(watched_list), _ADDRESSES_PER_LOG_QUERY):
                chunk = watched_list[start : start + _ADDRESSES_PER_LOG_QUERY]
                log_filter: FilterParams = {
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": [HexStr(TRANSFER_TOPIC), None, [_address_topic(a) for a in chunk]],
                }
                if not any_token:
                    log_filter["address"] = token_set
                logs = await w3.eth.get_logs(log_filter)
                for log in logs:
                    if log.get("removed"):
                        continue
                    block_hash = _hex(log["blockHash"])
                    if block_hash not in blocks:
                        # The chain moved between our block reads and this query: take the log's own block.
                        blocks[block_hash] = await w3.eth.get_block(log["blockHash"])
                    transfer = _decode_transfer(log)
                    if transfer is None or transfer.to_address.lower() not in watched:
                        continue
                    found.append(
                        ObservedTransfer(
                            chain_id=chain_id,
                            tx_hash=_hex(log["transactionHash"]),
                            log_index=transfer.log_index,
                            block_number=int(log["blockNumber"]),
                            block_hash=block_hash,
                            block_timestamp=int(blocks[block_hash]["timestamp"]),
                            token=AsyncWeb3.to_checksum_address(log["address"]),
                            from_address=transfer.from_address,
                            to_address=transfer.to_address,
                            amount_minor=transfer.amount_minor,
                        )
                    )
    found.sort(key=lambda t: (t.block_number, t.log_index))
    return BlockScan(found, untraced, frozenset(traced))


async def trace_block_transfers(
    w3: AsyncWeb3, number: int, addresses: Iterable[str]
) -> list[ObservedTransfer]:
    """The contract-internal ETH transfers to `addresses` in the canonical block `number` (a retry of a block
    the node could not trace before). Raises BlockUntraceable or ChainUnavailable."""
    watched = {normalize_address(a).lower() for a in addresses}
    with _rpc_guard():
        chain_id = await w3.eth.chain_id
        block = await w3.eth.get_block(number)
        return await _traced_transfers(w3, chain_id, block, watched)


async def _traced_transfers(
    w3: AsyncWeb3, chain_id: int, block: BlockData, watched: set[str]
) -> list[ObservedTransfer]:
    number = int(block["number"])
    return [
        ObservedTransfer(
            chain_id=chain_id,
            tx_hash=internal.tx_hash,
            log_index=internal.log_index,
            block_number=number,
            block_hash=_hex(block["hash"]),
            block_timestamp=int(block["timestamp"]),
            token=None,
            from_address=internal.from_address,
            to_address=internal.to_address,
            amount_minor=internal.amount_minor,
        )
        for internal in internal_transfers(await block_traces(w3, number), watched)
    ]


def _full_transactions(block: BlockData) -> Iterator[TxData]:
    """The transactions of a block read with full_transactions=True (web3 types them as hashes or txs)."""
    for tx in block["transactions"]:
        if isinstance(tx, Mapping):
            yield tx


def _native_transfers(tx: TxData, deposit: str) -> tuple[Transfer, ...]:
    to = tx.get("to")
    value = int(tx.get("value", 0))
    if not to or to.lower() != deposit.lower() or value <= 0:
        return ()
    return (
        Transfer(
            log_index=NATIVE_LOG_INDEX,
            from_address=AsyncWeb3.to_checksum_address(tx["from"]),
            to_address=AsyncWeb3.to_checksum_address(to),
            amount_minor=value,
        ),
    )


def _token_transfers(logs: Iterable[LogReceipt], token: str, recipients: set[str]) -> Iterator[Transfer]:
    for log in logs:
        # The emitter is what makes a Transfer real: any contract can emit a Transfer-shaped event.
        if str(log["address"]).lower() != token.lower() or log.get("removed"):
            continue
        transfer = _decode_transfer(log)
        if transfer is not None and transfer.to_address.lower() in recipients:
            yield transfer


def _decode_transfer(log: LogReceipt) -> Transfer | None:
    """Decode a standard ERC-20 Transfer(address indexed, address indexed, uint256); None if not one."""
    topics = [HexBytes(t) for t in log["topics"]]
    if len(topics) != 3 or topics[0] != HexBytes(TRANSFER_TOPIC):
        # Three topics distinguishes ERC-20 from ERC-721, whose tokenId is a fourth, indexed topic.
        return None
    data = HexBytes(log["data"])
    if len(data) != 32:
        return None
    return Transfer(
        log_index=int(log["logIndex"]),
        from_address=AsyncWeb3.to_checksum_address(topics[1][-20:]),
        to_address=AsyncWeb3.to_checksum_address(topics[2][-20:]),
        amount_minor=int.from_bytes(data, "big"),
    )


def _address_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def _hex(value: HexBytes | bytes | str) -> str:
    return HexBytes(value).to_0x_hex()


@contextlib.contextmanager
def _rpc_guard() -> Iterator[None]:
    try:
        yield
    except TransactionNotFound:
        raise
    except (aiohttp.ClientError, OSError, TimeoutError, ProviderConnectionError) as exc:
        raise ChainUnavailable(f"RPC node unreachable: {exc}") from exc
    except (Web3RPCError, BlockNotFound) as exc:
        raise ChainUnavailable(f"RPC node error: {exc}") from exc
