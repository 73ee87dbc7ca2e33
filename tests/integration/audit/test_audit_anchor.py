"""Anchoring of the audit chain heads (contract §9): each service logs every head and exports a digest of all
of them as metrics, and the logged heads serve `paygate audit verify --expect-heads` as they are."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from paygate_runtime.audit_anchor import AuditAnchor, interval_from_env
from paygate_runtime.audit_chain import parse_expected_heads
from paygate_runtime.cli.audit_cmd import verify
from paygate_runtime.config import ConfigError
from paygate_runtime.db import create_pool
from paygate_runtime.logs import JsonFormatter
from paygate_runtime.metrics import ServiceMetrics
from support import polling
from support.database import TestDatabase
from support.stack import free_ports


async def _insert(db: TestDatabase, merchant: str | None, n: int) -> None:
    conn = await asyncpg.connect(db.runtime_dsn("session"))
    try:
        for _ in range(n):
            await conn.execute(
                "INSERT INTO session.audit_log (merchant_id, actor, action) VALUES ($1, 'api', 'session_created')",
                merchant,
            )
    finally:
        await conn.close()


def _prefix(page: str, service: str) -> int:
    """The digest prefix gauge's value: the first 13 hex digits (52 bits, exact in a float) as a number."""
    name = f'paygate_audit_anchor_digest_prefix{{service="{service}"}} '
    [line] = [line for line in page.splitlines() if line.startswith(name)]
    value = float(line[len(name) :])
    assert value.is_integer()
    return int(value)


async def test_anchor_logs_every_head_and_exports_the_digest(
    clean_db: TestDatabase, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    merchant = str(uuid.uuid4())
    await _insert(clean_db, merchant, 3)
    await _insert(clean_db, None, 1)
    pool = await create_pool(clean_db.runtime_dsn("session"), "session", min_size=1, max_size=2)
    metrics = ServiceMetrics("session")
    anchor = AuditAnchor("session", pool, metrics, interval_s=60)
    try:
        with caplog.at_level(logging.INFO, logger="paygate.audit"):
            digest = await anchor.anchor_once()
            page = (await metrics.render()).decode()
            # A second anchor with nothing new logs no head again, only the digest.
            caplog_before = len([r for r in caplog.records if r.getMessage() == "audit_anchor"])
            assert await anchor.anchor_once() == digest
            assert len([r for r in caplog.records if r.getMessage() == "audit_anchor"]) == caplog_before
            # A new entry moves the digest; the info series is replaced, not accumulated.
            await _insert(clean_db, merchant, 1)
            moved = await anchor.anchor_once()
            page_after = (await metrics.render()).decode()
    finally:
        await pool.close()

    results, _ = await verify(clean_db.admin_dsn, ["session"], [])
    assert results[0].digest == moved != digest
    assert 'paygate_audit_chain_head_sequence{service="session"} 4.0' in page
    # The digest is witnessed as a value, not a label: a label per digest would start a new series on every
    # anchor that moved (1,440 a day per replica), against README's "label sets bounded".
    assert _prefix(page, "session") == int(digest[:13], 16)
    assert "digest=" not in page
    assert 'paygate_audit_chains{service="session"} 2.0' in page
    assert 'paygate_audit_chain_head_sequence{service="session"} 5.0' in page_after
    assert _prefix(page_after, "session") == int(moved[:13], 16)
    assert merchant not in page_after  # no merchant id in a label

    # The log lines, as the JSON formatter writes them, are an --expect-heads file.
    formatter = JsonFormatter("session")
    lines = [formatter.format(r) for r in caplog.records if r.getMessage() == "audit_anchor"]
    heads = parse_expected_heads("\n".join(lines))
    assert {(h.chain, h.seq) for h in heads} >= {(merchant, 3), ("system", 1), (merchant, 4)}
    log_file = tmp_path / "anchors.log"
    log_file.write_text("\n".join(lines))
    results, problems = await verify(clean_db.admin_dsn, ["session"], heads)
    assert results[0].ok and problems == []
    first = json.loads(lines[0])
    assert first["msg"] == "audit_anchor" and first["service"] == "session"


def test_the_anchor_interval_is_at_most_a_minute() -> None:
    assert interval_from_env({}) == 60
    assert interval_from_env({"PAYGATE_AUDIT_ANCHOR_INTERVAL_S": "5"}) == 5
    for bad in ("0", "61", "soon"):
        with pytest.raises(ConfigError):
            interval_from_env({"PAYGATE_AUDIT_ANCHOR_INTERVAL_S": bad})


async def test_a_served_service_anchors_on_its_own(clean_db: TestDatabase, stack_env: dict[str, str]) -> None:
    """`paygate serve keys` as in production: the anchor task logs the heads and the metrics port shows them."""
    merchant = str(uuid.uuid4())
    conn = await asyncpg.connect(clean_db.runtime_dsn("keys"))
    try:
        await conn.execute(
            """INSERT INTO keys.audit_events (event_type, merchant_id, object_type, object_id)
               VALUES ('KEY_ISSUED', $1, 'api_key', 'k1')""",
            merchant,
        )
    finally:
        await conn.close()
    grpc_port, metrics_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env.update(stack_env)
    env.update(
        PAYGATE_DATABASE_URL=clean_db.runtime_dsn("keys"),
        PAYGATE_GRPC_PORT=str(grpc_port),
        PAYGATE_METRICS_PORT=str(metrics_port),
        PAYGATE_AUDIT_ANCHOR_INTERVAL_S="1",
        PAYGATE_LOG_LEVEL="INFO",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "keys"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        async def anchored() -> str | None:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"http://127.0.0.1:{metrics_port}/metrics") as r,
                ):
                    page = await r.text()
            except aiohttp.ClientError:
                return None
            return page if 'paygate_audit_chain_head_sequence{service="keys"} 1.0' in page else None

        page = await polling.eventually(anchored, timeout=60, interval=0.5, what="anchor metrics")
        assert 'paygate_audit_anchor_digest_prefix{service="keys"}' in page and "digest=" not in page
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(proc.communicate, timeout=30)
    anchors = [json.loads(line) for line in stderr.splitlines() if '"audit_anchor"' in line]
    assert {(a["service"], a["chain"], a["sequence"]) for a in anchors} == {("keys", merchant, 1)}
