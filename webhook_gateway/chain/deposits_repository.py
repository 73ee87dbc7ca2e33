"""The gateway's on-chain deposit ledger (schema `gateway`): recorded transfers, confirmations, watcher cursor.

Writes are single statements or short transactions on the gateway pool; nothing here talks to the chain or
to the session service.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final

import asyncpg

from webhook_gateway.chain.ledger import Deposit
from webhook_gateway.chain.verification import ObservedTransfer

SOURCES: Final = frozenset({"webhook", "watcher"})

TransferKey = tuple[int, str, int]  # (chain_id, tx_hash, log_index)


class RecordOutcome(Enum):
    INSERTED = "inserted"  # first time this transfer was seen
    MOVED = "moved"  # known, for this session; its block changed (re-mined after a reorg) or it came back
    UNCHANGED = "unchanged"  # known, for this session, same block
    OTHER_SESSION = "other_session"  # already counted for another session: it never counts twice


@dataclass(frozen=True, slots=True)
class Recorded:
    outcome: RecordOutcome
    owner_session_id: str


@dataclass(frozen=True, slots=True)
class DepositRow:
    chain_id: int
    tx_hash: str
    log_index: int
    session_id: str
    deposit_address: str
    token: str | None
    from_address: str
    amount_minor: int
    block_number: int
    block_hash: str
    block_timestamp: int
    canonical: bool
    source: str
    claimed: bool
    reported_as: str | None
    # The transfer's asset (NULL on rows recorded before assets were stored: those are in the session's own).
    currency: str | None = None
    exponent: int | None = None

    @property
    def key(self) -> TransferKey:
        return (self.chain_id, self.tx_hash, self.log_index)

    def as_deposit(self) -> Deposit:
        return Deposit(
            tx_hash=self.tx_hash,
            log_index=self.log_index,
            block_number=self.block_number,
            block_hash=self.block_hash,
            block_timestamp=self.block_timestamp,
            amount_minor=self.amount_minor,
            canonical=self.canonical,
        )


@dataclass(frozen=True, slots=True)
class Confirmation:
    session_id: str
    chain_id: int
    amount_minor: int
    confirmed_height: int
    provider_reference: str
    occurred_at: int
    applied_outcome: str | None


_DEPOSIT_COLUMNS: Final = """chain_id, tx_hash, log_index, session_id, deposit_address, token, from_address,
    amount_minor, block_number, block_hash, block_timestamp, canonical, source, claimed, reported_as,
    currency, exponent"""


def _deposit(row: asyncpg.Record) -> DepositRow:
    return DepositRow(
        chain_id=int(row["chain_id"]),
        tx_hash=row["tx_hash"],
        log_index=int(row["log_index"]),
        session_id=str(row["session_id"]),
        deposit_address=row["deposit_address"],
        token=row["token"],
        from_address=row["from_address"],
        amount_minor=int(row["amount_minor"]),
        block_number=int(row["block_number"]),
        block_hash=row["block_hash"],
        block_timestamp=int(row["block_timestamp"]),
        canonical=bool(row["canonical"]),
        source=row["source"],
        claimed=bool(row["claimed"]),
        reported_as=row["reported_as"],
        currency=row["currency"],
        exponent=None if row["exponent"] is None else int(row["exponent"]),
    )


def _confirmation(row: asyncpg.Record) -> Confirmation:
    return Confirmation(
        session_id=str(row["session_id"]),
        chain_id=int(row["chain_id"]),
        amount_minor=int(row["amount_minor"]),
        confirmed_height=int(row["confirmed_height"]),
        provider_reference=row["provider_reference"],
        occurred_at=int(row["occurred_at"]),
        applied_outcome=row["applied_outcome"],
    )


def _keys_arrays(keys: Iterable[TransferKey]) -> tuple[list[int], list[str], list[int]]:
    chains, hashes, logs = [], [], []
    for chain_id, tx_hash, log_index in keys:
        chains.append(chain_id)
        hashes.append(tx_hash)
        logs.append(log_index)
    return chains, hashes, logs


class DepositsRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(self, transfer: ObservedTransfer, session_id: str, source: str) -> Recorded:
        """Record a transfer for `session_id`, once. Re-observing it in another block (a reorg re-mined it)
        re-points the row; a transfer already held by another session is left alone (OTHER_SESSION).
        """
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}")
        sid = uuid.UUID(session_id)
        tx_hash = transfer.tx_hash.lower()
        async with self.pool.acquire() as conn:
            inserted = await conn.fetchval(
                """INSERT INTO chain_deposits (chain_id, tx_hash, log_index, session_id, deposit_address, token,
                                               from_address, amount_minor, block_number, block_hash,
                                               block_timestamp, source, currency, exponent)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                   ON CONFLICT (chain_id, tx_hash, log_index) DO NOTHING
                   RETURNING true""",
                transfer.chain_id,
                tx_hash,
                transfer.log_index,
                sid,
                transfer.to_address,
                transfer.token,
                transfer.from_address,
                transfer.amount_minor,
                transfer.block_number,
                transfer.block_hash,
                transfer.block_timestamp,
                source,
                transfer.currency,
                transfer.exponent,
            )
            if inserted:
                return Recorded(RecordOutcome.INSERTED, session_id)
            moved = await conn.fetchval(
                """UPDATE chain_deposits
                      SET block_number = $5, block_hash = $6, block_timestamp = $7, canonical = true,
                          updated_at = now()
                    WHERE chain_id = $1 AND tx_hash = $2 AND log_index = $3 AND session_id = $4
                      AND (block_hash <> $6 OR NOT canonical)
                RETURNING true""",
                transfer.chain_id,
                tx_hash,
                transfer.log_index,
                sid,
                transfer.block_number,
                transfer.block_hash,
                transfer.block_timestamp,
            )
            if moved:
                return Recorded(RecordOutcome.MOVED, session_id)
            owner = await conn.fetchval(
                "SELECT session_id FROM chain_deposits WHERE chain_id = $1 AND tx_hash = $2 AND log_index = $3",
                transfer.chain_id,
                tx_hash,
                transfer.log_index,
            )
        if owner is None:  # pragma: no cover - the runtime role cannot delete ledger rows
            raise RuntimeError("ledger row vanished after a conflict")
        if owner == sid:
            return Recorded(RecordOutcome.UNCHANGED, session_id)
        return Recorded(RecordOutcome.OTHER_SESSION, str(owner))

    async def owner_of(self, chain_id: int, tx_hash: str) -> list[DepositRow]:
        rows = await self.pool.fetch(
            f"SELECT {_DEPOSIT_COLUMNS} FROM chain_deposits WHERE chain_id = $1 AND tx_hash = $2",
            chain_id,
            tx_hash.lower(),
        )
        return [_deposit(r) for r in rows]

    async def for_session(self, session_id: str) -> list[DepositRow]:
        rows = await self.pool.fetch(
            f"""SELECT {_DEPOSIT_COLUMNS} FROM chain_deposits WHERE session_id = $1
                 ORDER BY block_number, log_index, tx_hash""",
            uuid.UUID(session_id),
        )
        return [_deposit(r) for r in rows]

    async def sessions_with_deposits(self, session_ids: Sequence[str]) -> set[str]:
        if not session_ids:
            return set()
        rows = await self.pool.fetch(
            "SELECT DISTINCT session_id FROM chain_deposits WHERE session_id = ANY($1::uuid[])",
            [uuid.UUID(s) for s in session_ids],
        )
        return {str(r["session_id"]) for r in rows}

    async def sessions_needing_settlement(self, session_ids: Sequence[str]) -> set[str]:
        """Of `session_ids`, those with a deposit not yet inside a confirmed total nor reported on its own
        (a native deposit at or below the claim's height is inside the balance that was counted)."""
        if not session_ids:
            return set()
        rows = await self.pool.fetch(
            """SELECT DISTINCT d.session_id
                 FROM chain_deposits d
                 LEFT JOIN chain_confirmations c ON c.session_id = d.session_id
                WHERE d.session_id = ANY($1::uuid[])
                  AND NOT d.claimed AND d.reported_as IS NULL
                  AND NOT (d.token IS NULL AND c.confirmed_height IS NOT NULL
                           AND d.block_number <= c.confirmed_height)""",
            [uuid.UUID(s) for s in session_ids],
        )
        return {str(r["session_id"]) for r in rows}

    async def sessions_with_recent_deposits(self, chain_id: int, since_block: int) -> set[str]:
        """Sessions with a deposit mined at or above `since_block`: still inside the reorg window."""
        rows = await self.pool.fetch(
            "SELECT DISTINCT session_id FROM chain_deposits WHERE chain_id = $1 AND block_number >= $2",
            chain_id,
            since_block,
        )
        return {str(r["session_id"]) for r in rows}

    async def set_canonical(self, keys: Iterable[TransferKey], canonical: bool) -> None:
        chains, hashes, logs = _keys_arrays(keys)
        if not chains:
            return
        await self.pool.execute(
            """UPDATE chain_deposits AS d SET canonical = $4, updated_at = now()
                 FROM unnest($1::bigint[], $2::text[], $3::int[]) AS k(chain_id, tx_hash, log_index)
                WHERE d.chain_id = k.chain_id AND d.tx_hash = k.tx_hash AND d.log_index = k.log_index
                  AND d.canonical <> $4""",
            chains,
            hashes,
            logs,
            canonical,
        )

    async def mark_reported(self, key: TransferKey, reported_as: str) -> None:
        await self.pool.execute(
            """UPDATE chain_deposits SET reported_as = $4, updated_at = now()
                WHERE chain_id = $1 AND tx_hash = $2 AND log_index = $3 AND reported_as IS NULL""",
            *key,
            reported_as,
        )

    async def claim_confirmation(
        self,
        session_id: str,
        *,
        chain_id: int,
        amount_minor: int,
        confirmed_height: int,
        provider_reference: str,
        occurred_at: int,
        included: Iterable[TransferKey],
    ) -> Confirmation:
        """Fix what the session's `succeeded` event says, once: the first claim wins, later ones read it."""
        sid = uuid.UUID(session_id)
        chains, hashes, logs = _keys_arrays(included)
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """INSERT INTO chain_confirmations (session_id, chain_id, amount_minor, confirmed_height,
                                                    provider_reference, occurred_at)
                   VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (session_id) DO NOTHING
                   RETURNING *""",
                sid,
                chain_id,
                amount_minor,
                confirmed_height,
                provider_reference,
                occurred_at,
            )
            if row is None:
                existing = await conn.fetchrow("SELECT * FROM chain_confirmations WHERE session_id = $1", sid)
                assert existing is not None
                return _confirmation(existing)
            if chains:
                await conn.execute(
                    """UPDATE chain_deposits AS d SET claimed = true, updated_at = now()
                         FROM unnest($1::bigint[], $2::text[], $3::int[]) AS k(chain_id, tx_hash, log_index)
                        WHERE d.chain_id = k.chain_id AND d.tx_hash = k.tx_hash AND d.log_index = k.log_index
                          AND d.session_id = $4""",
                    chains,
                    hashes,
                    logs,
                    sid,
                )
            return _confirmation(row)

    async def confirmation(self, session_id: str) -> Confirmation | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM chain_confirmations WHERE session_id = $1", uuid.UUID(session_id)
        )
        return _confirmation(row) if row is not None else None

    async def confirmation_applied(self, session_id: str, outcome: str) -> None:
        await self.pool.execute(
            """UPDATE chain_confirmations SET applied_outcome = $2, updated_at = now()
                WHERE session_id = $1 AND applied_outcome IS NULL""",
            uuid.UUID(session_id),
            outcome,
        )

    async def cursor(self, chain_id: int) -> int | None:
        value = await self.pool.fetchval("SELECT last_block FROM chain_cursors WHERE chain_id = $1", chain_id)
        return int(value) if value is not None else None

    async def set_cursor(self, chain_id: int, last_block: int, last_block_hash: str | None) -> None:
        await self.pool.execute(
            """INSERT INTO chain_cursors (chain_id, last_block, last_block_hash) VALUES ($1, $2, $3)
               ON CONFLICT (chain_id) DO UPDATE
                  SET last_block = EXCLUDED.last_block, last_block_hash = EXCLUDED.last_block_hash,
                      updated_at = now()""",
            chain_id,
            last_block,
            last_block_hash,
        )


@dataclass(frozen=True, slots=True)
class AddressState:
    """A watched deposit address: its session's start and how reading it has gone lately."""

    session_id: str
    chain_id: int
    merchant_id: str
    deposit_address: str
    session_created_at: float
    start_block: int | None
    start_block_hash: str | None
    failures: int
    last_error: str | None
    last_error_at: Any
    next_attempt_at: Any


def _address(row: asyncpg.Record) -> AddressState:
    return AddressState(
        session_id=str(row["session_id"]),
        chain_id=int(row["chain_id"]),
        merchant_id=str(row["merchant_id"]),
        deposit_address=row["deposit_address"],
        session_created_at=float(row["session_created_at"]),
        start_block=None if row["start_block"] is None else int(row["start_block"]),
        start_block_hash=row["start_block_hash"],
        failures=int(row["failures"]),
        last_error=row["last_error"],
        last_error_at=row["last_error_at"],
        next_attempt_at=row["next_attempt_at"],
    )


@dataclass(frozen=True, slots=True)
class WatcherStatus:
    chain_id: int
    last_block: int
    head: int | None
    confirmed_height: int | None
    internal_transfers: str | None
    passes: int
    updated_at: Any


class AddressesRepository:
    """Per-address watch state (issue 13): start block, and failures recorded against one address."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def ensure(
        self,
        session_id: str,
        *,
        chain_id: int,
        merchant_id: str,
        deposit_address: str,
        session_created_at: float,
    ) -> AddressState:
        row = await self.pool.fetchrow(
            """WITH inserted AS (
                   INSERT INTO chain_addresses (session_id, chain_id, merchant_id, deposit_address,
                                                session_created_at)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (session_id) DO NOTHING
                   RETURNING *
               )
               SELECT * FROM inserted
               UNION ALL
               SELECT * FROM chain_addresses WHERE session_id = $1 AND NOT EXISTS (SELECT 1 FROM inserted)""",
            uuid.UUID(session_id),
            chain_id,
            uuid.UUID(merchant_id),
            deposit_address,
            session_created_at,
        )
        assert row is not None
        return _address(row)

    async def set_start(self, session_id: str, start_block: int, start_block_hash: str | None) -> None:
        await self.pool.execute(
            """UPDATE chain_addresses SET start_block = $2, start_block_hash = $3, updated_at = now()
                WHERE session_id = $1""",
            uuid.UUID(session_id),
            start_block,
            start_block_hash,
        )

    async def blocked(self, session_ids: Sequence[str]) -> set[str]:
        """Of `session_ids`, those still inside the backoff of their last failure."""
        if not session_ids:
            return set()
        rows = await self.pool.fetch(
            """SELECT session_id FROM chain_addresses
                WHERE session_id = ANY($1::uuid[]) AND next_attempt_at > now()""",
            [uuid.UUID(s) for s in session_ids],
        )
        return {str(r["session_id"]) for r in rows}

    async def record_failure(self, session_id: str, error: str, base_s: float, cap_s: float) -> AddressState:
        """Count one more failure against the address; the next attempt waits base * 2^(failures - 1),
        at most `cap_s`."""
        row = await self.pool.fetchrow(
            """UPDATE chain_addresses
                  SET failures = failures + 1, last_error = $2, last_error_at = now(),
                      next_attempt_at = now() + make_interval(
                          secs => LEAST($4::float8, $3::float8 * power(2, LEAST(failures, 30)))),
                      updated_at = now()
                WHERE session_id = $1
            RETURNING *""",
            uuid.UUID(session_id),
            error[:500],
            base_s,
            cap_s,
        )
        assert row is not None, "ensure() the address first"
        return _address(row)

    async def clear_failure(self, session_id: str) -> None:
        await self.pool.execute(
            """UPDATE chain_addresses SET failures = 0, next_attempt_at = NULL, updated_at = now()
                WHERE session_id = $1 AND failures > 0""",
            uuid.UUID(session_id),
        )

    async def failing(self, chain_id: int, merchant_id: str | None) -> list[AddressState]:
        rows = await self.pool.fetch(
            """SELECT * FROM chain_addresses
                WHERE chain_id = $1 AND failures > 0 AND ($2::uuid IS NULL OR merchant_id = $2)
                ORDER BY last_error_at DESC LIMIT 100""",
            chain_id,
            uuid.UUID(merchant_id) if merchant_id else None,
        )
        return [_address(r) for r in rows]

    async def get(self, session_id: str) -> AddressState | None:
        row = await self.pool.fetchrow(
            "SELECT * FROM chain_addresses WHERE session_id = $1", uuid.UUID(session_id)
        )
        return _address(row) if row is not None else None

    async def record_pass(
        self, chain_id: int, *, head: int, confirmed_height: int | None, internal_transfers: str
    ) -> None:
        await self.pool.execute(
            """UPDATE chain_cursors
                  SET head = $2, confirmed_height = $3, internal_transfers = $4, passes = passes + 1,
                      updated_at = now()
                WHERE chain_id = $1""",
            chain_id,
            head,
            confirmed_height,
            internal_transfers,
        )

    async def watcher_status(self, chain_id: int) -> WatcherStatus | None:
        row = await self.pool.fetchrow("SELECT * FROM chain_cursors WHERE chain_id = $1", chain_id)
        if row is None:
            return None
        return WatcherStatus(
            chain_id=chain_id,
            last_block=int(row["last_block"]),
            head=None if row["head"] is None else int(row["head"]),
            confirmed_height=None if row["confirmed_height"] is None else int(row["confirmed_height"]),
            internal_transfers=row["internal_transfers"],
            passes=int(row["passes"]),
            updated_at=row["updated_at"],
        )
