"""The expiry sweeper: ends `created` sessions whose time is up, and web3 `pending` sessions whose grace is up.

A card `pending` session is never touched: the provider has the last word. A web3 `pending` session has no
provider to end it (one dust transfer would pin it forever), so it expires `PAYGATE_CHAIN_PENDING_GRACE_S`
(default 3600) after `expires_at`; the gateway then quarantines its partial money as it does any money on a
closed session.

With several replicas only one sweeps at a time: each pass takes a transaction-scoped Postgres advisory
lock with pg_try_advisory_xact_lock, and a replica that does not get it simply skips the pass.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

from paygate_runtime.chain_config import ChainNodes, load_chain_nodes
from paygate_runtime.config import Env
from session_service.adapters import chain_repository as chain_repo
from session_service.adapters import session_repository as repo
from session_service.adapters.chain_probe import ChainProbe

log = logging.getLogger(__name__)

DEFAULT_PENDING_GRACE_S = 3600


@dataclass(frozen=True)
class SessionChainSettings:
    """The session service's view of the chains (contract §6, §6a)."""

    pending_grace_s: int = DEFAULT_PENDING_GRACE_S
    nodes: ChainNodes = field(default_factory=ChainNodes)
    rpc_timeout_s: float = 10.0

    @property
    def mainnet_ids(self) -> frozenset[int]:
        return self.nodes.mainnet_ids

    def probes(self) -> dict[int, ChainProbe]:
        """A read-only prober per configured chain, for the payment-settings checks."""
        return {
            chain.chain_id: ChainProbe(chain.chain_id, chain.rpc_url, self.rpc_timeout_s)
            for chain in self.nodes.chains.values()
        }


def load_session_chain_settings(env: Env) -> SessionChainSettings:
    return SessionChainSettings(
        pending_grace_s=env.int(
            "PAYGATE_CHAIN_PENDING_GRACE_S", DEFAULT_PENDING_GRACE_S, minimum=0, maximum=30 * 86_400
        ),
        nodes=load_chain_nodes(env),
        rpc_timeout_s=env.millis("PAYGATE_CHAIN_RPC_TIMEOUT_MS", 10_000, minimum=100, maximum=120_000),
    )


async def sweep_once(
    pool: asyncpg.Pool, batch: int = 500, pending_grace_s: int = DEFAULT_PENDING_GRACE_S
) -> int | None:
    """Expire up to `batch` due sessions of each kind; None when another replica holds the sweep lock."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", repo.SWEEPER_LOCK_KEY):
            return None
        expired = await repo.expire_due(conn, batch)
        pending = await chain_repo.expire_due_pending_web3(conn, batch, pending_grace_s)
    if expired:
        log.info("sweeper expired sessions", extra={"count": len(expired)})
    if pending:
        log.info("sweeper expired pending web3 sessions", extra={"count": len(pending)})
    return max(len(expired), len(pending))


async def run_sweeper(
    pool: asyncpg.Pool, interval_s: float, batch: int = 500, pending_grace_s: int = DEFAULT_PENDING_GRACE_S
) -> None:
    while True:
        try:
            count = await sweep_once(pool, batch, pending_grace_s)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("sweep failed; retrying next interval", extra={"error": str(exc)})
            count = 0
        if count != batch:
            await asyncio.sleep(interval_s)
