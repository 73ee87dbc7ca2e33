"""Periodic anchoring of a service's audit chain heads (issue 20, contract §9).

Every `interval_s` (60 s by default, PAYGATE_AUDIT_ANCHOR_INTERVAL_S) the service reads its
`audit_chain_heads` and:
- logs one `audit_anchor` line per chain head (JSON: service, chain, sequence, hash): every head on the first
  anchor and once an hour, the heads that moved in between (an unchanged head was anchored before with the same
  value). These lines, kept by the log pipeline, are what `paygate audit verify --expect-heads` reads; a
  notary can timestamp them;
- logs one `audit_anchor_digest` line (service, chains, entries, digest) and exports it as metrics:
  `paygate_audit_chain_head_sequence{service}` (entries over all chains: the sum of the head sequences),
  `paygate_audit_chains{service}`, `paygate_audit_anchor_timestamp_seconds{service}` and
  `paygate_audit_anchor_digest_prefix{service}`, the digest's first 13 hex digits as a number (52 bits, exact
  in a float), digest = sha256 over the sorted "<chain> <seq> <hash>" lines (`audit_chain.heads_digest`, also
  printed by `paygate audit verify`). Prometheus thus keeps the digest's history beside the logs' without a
  label per digest, which would start a new series on every anchor that moved (it was an info-style
  `paygate_audit_anchor_info{service,digest} 1` until the operator walk of wave 2 found the churn). Labels stay
  bounded: no merchant id or digest ever becomes a label.

One small indexed read of the head table per minute; the writers never wait for it (plain SELECT, no lock).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from paygate_runtime.audit_chain import AUDIT_TABLES, heads_digest
from paygate_runtime.config import ConfigError
from paygate_runtime.metrics import ServiceMetrics

# 13 hex digits are 52 bits, which a float64 (Prometheus's sample value) holds exactly.
DIGEST_PREFIX_HEX = 13

log = logging.getLogger("paygate.audit")

DEFAULT_INTERVAL_S = 60.0
FULL_EVERY = 60  # anchors: every head is logged again once an hour at the default interval


def interval_from_env(environ: dict[str, str] | None = None) -> float:
    text = (environ if environ is not None else os.environ).get("PAYGATE_AUDIT_ANCHOR_INTERVAL_S", "")
    if not text:
        return DEFAULT_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        raise ConfigError("PAYGATE_AUDIT_ANCHOR_INTERVAL_S", "must be a number of seconds") from None
    if not 1 <= value <= 60:
        # The contract anchors every head at least every minute.
        raise ConfigError("PAYGATE_AUDIT_ANCHOR_INTERVAL_S", "must be between 1 and 60 seconds")
    return value


class AuditAnchor:
    def __init__(
        self, service: str, pool: Any, metrics: ServiceMetrics, interval_s: float = DEFAULT_INTERVAL_S
    ):
        self.service = service
        self.pool = pool
        self.interval_s = interval_s
        self._schema = AUDIT_TABLES[service].table.split(".")[0]
        self._logged: dict[str, tuple[int, str]] = {}
        self._anchors = 0
        self._sequence = metrics.gauge(
            "paygate_audit_chain_head_sequence",
            "Audit entries over all of this service's hash chains (the sum of their head sequence numbers)",
            ["service"],
        ).labels(service)
        self._chains = metrics.gauge(
            "paygate_audit_chains",
            "Hash chains of this service's audit (merchants, and the system chain)",
            ["service"],
        ).labels(service)
        self._anchored_at = metrics.gauge(
            "paygate_audit_anchor_timestamp_seconds",
            "When this service last anchored its audit heads",
            ["service"],
        ).labels(service)
        self._digest_prefix = metrics.gauge(
            "paygate_audit_anchor_digest_prefix",
            "The digest of all audit chain heads at the last anchor (sha256 over sorted 'chain seq hash' lines): "
            "its first 13 hex digits as a number; the whole digest is in the audit_anchor_digest log line",
            ["service"],
        ).labels(service)

    async def anchor_once(self) -> str:
        """Read the heads, log and export them; returns the digest."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT chain, seq, hash FROM {self._schema}.audit_chain_heads ORDER BY chain"
            )
        heads = [(r["chain"], r["seq"], r["hash"]) for r in rows]
        full = self._anchors % FULL_EVERY == 0
        for chain, seq, digest in heads:
            if full or self._logged.get(chain) != (seq, digest):
                log.info("audit_anchor", extra={"chain": chain, "sequence": seq, "hash": digest})
                self._logged[chain] = (seq, digest)
        self._anchors += 1
        digest = heads_digest(heads)
        entries = sum(seq for _, seq, _ in heads)
        log.info(
            "audit_anchor_digest",
            extra={"chains": len(heads), "entries": entries, "digest": digest, "full": full},
        )
        self._sequence.set(entries)
        self._chains.set(len(heads))
        self._anchored_at.set(time.time())
        self._digest_prefix.set(int(digest[:DIGEST_PREFIX_HEX], 16))
        return digest

    async def run(self) -> None:
        while True:
            try:
                await self.anchor_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The next minute tries again; the timestamp gauge shows a stale anchor to alerting.
                log.exception("audit anchor failed")
            await asyncio.sleep(self.interval_s)
