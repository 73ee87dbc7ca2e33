"""Blocks the RPC node could not trace (table `chain_untraced_blocks`): recorded so the watcher can move on,
traced again with backoff, and shown in GET /v1/chain/status until the node answers for them.

Nothing here talks to the chain; the watcher decides what to record and when a block is resolved.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class UntracedBlockRow:
    chain_id: int
    block_number: int
    block_hash: str
    failures: int
    last_error: str
    fallback_sessions: frozenset[str]
    first_failed_at: datetime
    last_error_at: datetime
    next_attempt_at: datetime


def _row(row: asyncpg.Record) -> UntracedBlockRow:
    return UntracedBlockRow(
        chain_id=int(row["chain_id"]),
        block_number=int(row["block_number"]),
        block_hash=str(row["block_hash"]),
        failures=int(row["failures"]),
        last_error=str(row["last_error"]),
        fallback_sessions=frozenset(str(s) for s in row["fallback_sessions"]),
        first_failed_at=row["first_failed_at"],
        last_error_at=row["last_error_at"],
        next_attempt_at=row["next_attempt_at"],
    )


class UntracedBlocksRepository:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record_failure(
        self,
        chain_id: int,
        block_number: int,
        *,
        block_hash: str,
        error: str,
        fallback_sessions: Iterable[str],
        base_s: float,
        cap_s: float,
    ) -> UntracedBlockRow:
        """Count one more failed trace of the block; its next retry waits base * 2^(failures - 1), at most
        `cap_s`. The sessions to settle by balance are added to those already recorded (a block re-mined
        after a reorg may touch others). A resolved block that fails again is open again."""
        row = await self.pool.fetchrow(
            """INSERT INTO chain_untraced_blocks AS b (chain_id, block_number, block_hash, last_error,
                                                       fallback_sessions, next_attempt_at)
               VALUES ($1, $2, $3, $4, $5::uuid[], now() + make_interval(secs => $6::float8))
               ON CONFLICT (chain_id, block_number) DO UPDATE
                  SET failures = CASE WHEN b.resolved_at IS NULL THEN b.failures + 1 ELSE 1 END,
                      block_hash = EXCLUDED.block_hash,
                      last_error = EXCLUDED.last_error,
                      last_error_at = now(),
                      fallback_sessions = ARRAY(
                          SELECT DISTINCT unnest(b.fallback_sessions || EXCLUDED.fallback_sessions)),
                      next_attempt_at = now() + make_interval(secs => LEAST($7::float8,
                          $6::float8 * power(2, CASE WHEN b.resolved_at IS NULL
                                                     THEN LEAST(b.failures, 30) ELSE 0 END))),
                      first_failed_at = CASE WHEN b.resolved_at IS NULL THEN b.first_failed_at ELSE now() END,
                      resolved_at = NULL
            RETURNING *""",
            chain_id,
            block_number,
            block_hash,
            error[:500],
            [uuid.UUID(s) for s in fallback_sessions],
            base_s,
            cap_s,
        )
        assert row is not None
        return _row(row)

    async def resolve(self, chain_id: int, block_numbers: Collection[int]) -> int:
        """Mark blocks traced at last; returns how many were open."""
        if not block_numbers:
            return 0
        done = await self.pool.fetch(
            """UPDATE chain_untraced_blocks SET resolved_at = now()
                WHERE chain_id = $1 AND block_number = ANY($2::bigint[]) AND resolved_at IS NULL
            RETURNING block_number""",
            chain_id,
            list(block_numbers),
        )
        return len(done)

    async def open_blocks(self, chain_id: int, limit: int = 100) -> list[UntracedBlockRow]:
        """The blocks still untraced, lowest first."""
        rows = await self.pool.fetch(
            """SELECT * FROM chain_untraced_blocks WHERE chain_id = $1 AND resolved_at IS NULL
                ORDER BY block_number LIMIT $2""",
            chain_id,
            limit,
        )
        return [_row(r) for r in rows]

    async def waiting(self, chain_id: int) -> set[int]:
        """Open blocks inside the backoff of their last failure: not traced again yet."""
        rows = await self.pool.fetch(
            """SELECT block_number FROM chain_untraced_blocks
                WHERE chain_id = $1 AND resolved_at IS NULL AND next_attempt_at > now()""",
            chain_id,
        )
        return {int(r["block_number"]) for r in rows}

    async def fallback_sessions(self, chain_id: int) -> set[str]:
        """Sessions to settle by balance difference: touched by a block that is still untraced."""
        rows = await self.pool.fetch(
            """SELECT DISTINCT unnest(fallback_sessions) AS session_id FROM chain_untraced_blocks
                WHERE chain_id = $1 AND resolved_at IS NULL""",
            chain_id,
        )
        return {str(r["session_id"]) for r in rows}
