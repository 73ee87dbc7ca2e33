"""Hash-chained audit logs and `paygate audit verify` (issue 20, contract §9), on the real schema.

The chain is built by the database (a BEFORE INSERT trigger per audit table) for whatever writes a row; the
verifier recomputes it in Python. Tampering is done as the superuser, who has to disable the append-only
trigger first, as an operator with the owner role or a restore from the wrong backup would."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from paygate_runtime.audit_chain import GENESIS_HASH, canonical_bytes, entry_hash
from paygate_runtime.cli.audit_cmd import result_json, result_lines, verify
from support.database import TestDatabase

MERCHANT_A = str(uuid.uuid4())
MERCHANT_B = str(uuid.uuid4())
SERVICES = ["session", "keys", "billing"]


async def _session_rows(
    db: TestDatabase, merchant: str | None, n: int, *, action: str = "session_created"
) -> None:
    conn = await asyncpg.connect(db.runtime_dsn("session"))
    try:
        for i in range(n):
            await conn.execute(
                "INSERT INTO session.audit_log (session_id, merchant_id, actor, action, detail) VALUES ($1, $2, $3, $4, $5)",
                uuid.uuid4(),
                merchant,
                "api · Zoë",  # not ASCII: the length prefix counts UTF-8 bytes on both sides
                action,
                json.dumps({"n": i, "note": "line\nbreak", "amount_minor": 1000 + i}),
            )
    finally:
        await conn.close()


async def _keys_rows(db: TestDatabase, merchant: str | None, n: int) -> None:
    conn = await asyncpg.connect(db.runtime_dsn("keys"))
    try:
        for i in range(n):
            await conn.execute(
                """INSERT INTO keys.audit_events (event_type, merchant_id, object_type, object_id, details)
                   VALUES ('KEY_ISSUED', $1, 'api_key', $2, $3)""",
                merchant,
                f"key_{i}",
                json.dumps({"scope": ["read"], "i": i}),
            )
    finally:
        await conn.close()


async def _billing_rows(db: TestDatabase, merchant: str, n: int) -> None:
    # The billing audit is written by the invoices trigger as the owner; the owner may write it directly too.
    conn = await asyncpg.connect(db.owner_dsn("billing"))
    try:
        for i in range(n):
            await conn.execute(
                """INSERT INTO billing.billing_audit (event, invoice_id, merchant_id, mode, number, session_id, currency, total)
                   VALUES ('invoice_issued', $1, $2, 'test', $3, $4, 'EUR', $5)""",
                uuid.uuid4(),
                merchant,
                f"INV-{i}",
                str(uuid.uuid4()),
                10**30 + i,  # numeric(78, 0): beyond a bigint, exact in the canonical form
            )
    finally:
        await conn.close()


async def _tamper(db: TestDatabase, table: str, trigger: str, *statements: str) -> None:
    """As the superuser: disable the append-only trigger, change history, enable it again."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        async with conn.transaction():
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    finally:
        await conn.close()


def _cli(db: TestDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "paygate_runtime.cli.main",
            "audit",
            "verify",
            "--database-url",
            db.admin_dsn,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
async def populated(clean_db: TestDatabase) -> TestDatabase:
    await _session_rows(clean_db, MERCHANT_A, 5)
    await _session_rows(clean_db, MERCHANT_B, 3)
    await _session_rows(clean_db, None, 2)
    await _keys_rows(clean_db, MERCHANT_A, 3)
    await _keys_rows(clean_db, None, 1)
    await _billing_rows(clean_db, MERCHANT_A, 2)
    return clean_db


async def test_trigger_links_every_row_and_verify_recomputes_it(populated: TestDatabase) -> None:
    conn = await asyncpg.connect(populated.admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT chain, chain_seq, prev_hash, hash FROM session.audit_log ORDER BY chain, chain_seq"
        )
        chains = {r["chain"] for r in rows}
        assert chains == {MERCHANT_A, MERCHANT_B, "system"}
        a = [r for r in rows if r["chain"] == MERCHANT_A]
        assert [r["chain_seq"] for r in a] == [1, 2, 3, 4, 5]
        assert a[0]["prev_hash"] == GENESIS_HASH
        assert all(later["prev_hash"] == earlier["hash"] for earlier, later in itertools.pairwise(a))
        heads = await conn.fetch("SELECT chain, seq, hash FROM session.audit_chain_heads")
        assert {(h["chain"], h["seq"], h["hash"]) for h in heads} >= {(MERCHANT_A, 5, a[-1]["hash"])}
    finally:
        await conn.close()

    results, problems = await verify(populated.admin_dsn, SERVICES, [])
    assert problems == []
    assert [(r.service, r.ok, r.entries) for r in results] == [
        ("session", True, 10),
        ("keys", True, 4),
        ("billing", True, 2),
    ]

    done = _cli(populated)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("session: ok, 10 entries, head ")
    assert lines[1].startswith("keys: ok, 4 entries, head ")
    assert lines[2].startswith("billing: ok, 2 entries, head ")


async def test_runtime_role_cannot_forge_chain_columns_or_heads(populated: TestDatabase) -> None:
    conn = await asyncpg.connect(populated.runtime_dsn("session"))
    try:
        # Whatever a writer puts in the chain columns is overwritten by the trigger.
        await conn.execute(
            """INSERT INTO session.audit_log (merchant_id, actor, action, chain, chain_seq, prev_hash, hash)
               VALUES ($1, 'api', 'forged', 'other', 99, 'x', 'y')""",
            MERCHANT_A,
        )
        row = await conn.fetchrow("SELECT chain, chain_seq FROM session.audit_log WHERE action = 'forged'")
        assert (row["chain"], row["chain_seq"]) == (MERCHANT_A, 6)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("UPDATE session.audit_chain_heads SET seq = 0")
    finally:
        await conn.close()
    results, _ = await verify(populated.admin_dsn, ["session"], [])
    assert results[0].ok


async def test_a_changed_entry_is_named_and_verify_exits_1(populated: TestDatabase) -> None:
    await _tamper(
        populated,
        "session.audit_log",
        "audit_log_append_only",
        f"UPDATE session.audit_log SET actor = 'mallory' WHERE chain = '{MERCHANT_A}' AND chain_seq = 3",
    )
    done = _cli(populated)
    assert done.returncode == 1
    assert f"session: BROKEN chain {MERCHANT_A}: entry 3 (id " in done.stdout
    assert "changed" in done.stdout
    # The other services are still fine, and say so.
    assert "keys: ok, 4 entries" in done.stdout


async def test_a_changed_jsonb_detail_and_billing_total_are_caught(populated: TestDatabase) -> None:
    await _tamper(
        populated,
        "session.audit_log",
        "audit_log_append_only",
        f"""UPDATE session.audit_log SET detail = jsonb_set(detail, '{{amount_minor}}', '1')
             WHERE chain = '{MERCHANT_B}' AND chain_seq = 2""",
    )
    await _tamper(
        populated,
        "billing.billing_audit",
        "billing_audit_append_only",
        f"UPDATE billing.billing_audit SET total = total + 1 WHERE chain = '{MERCHANT_A}' AND chain_seq = 1",
    )
    results, _ = await verify(populated.admin_dsn, SERVICES, [])
    broken = {(c.service, c.chain, c.problem_seq) for r in results for c in r.chains if not c.ok}
    assert broken == {("session", MERCHANT_B, 2), ("billing", MERCHANT_A, 1)}


async def test_a_removed_entry_is_named(populated: TestDatabase) -> None:
    await _tamper(
        populated,
        "keys.audit_events",
        "audit_events_append_only",
        f"DELETE FROM keys.audit_events WHERE chain = '{MERCHANT_A}' AND chain_seq = 2",
    )
    done = _cli(populated, "--service", "keys")
    assert done.returncode == 1
    assert (
        done.stdout.strip() == f"keys: BROKEN chain {MERCHANT_A}: entry 2 removed: the chain goes from 1 to 3"
    )


async def test_two_swapped_entries_are_named(populated: TestDatabase) -> None:
    # Swap the positions of entries 2 and 3 (their chain columns), as a restore that reordered rows would.
    conn = await asyncpg.connect(populated.admin_dsn)
    try:
        two, three = await conn.fetch(
            """SELECT id, prev_hash, hash FROM session.audit_log
                WHERE chain = $1 AND chain_seq IN (2, 3) ORDER BY chain_seq""",
            MERCHANT_A,
        )
    finally:
        await conn.close()
    table = "session.audit_log"
    await _tamper(
        populated,
        table,
        "audit_log_append_only",
        # Through -1: the unique (chain, chain_seq) index refuses two rows at one position, even for a moment.
        f"UPDATE {table} SET chain_seq = -1 WHERE id = {two['id']}",
        f"UPDATE {table} SET chain_seq = 2, prev_hash = '{two['prev_hash']}', hash = '{two['hash']}' "
        f"WHERE id = {three['id']}",
        f"UPDATE {table} SET chain_seq = 3, prev_hash = '{three['prev_hash']}', hash = '{three['hash']}' "
        f"WHERE id = {two['id']}",
    )
    results, _ = await verify(populated.admin_dsn, ["session"], [])
    (broken,) = [c for c in results[0].chains if not c.ok]
    assert (broken.chain, broken.problem_seq) == (MERCHANT_A, 2)
    assert "changed" in (broken.problem or "")


async def test_reordered_entries_with_recomputed_hashes_are_out_of_order(populated: TestDatabase) -> None:
    # A smarter forger swaps two entries and recomputes each one's own hash from its stored prev_hash: each row
    # is consistent in itself, but the links no longer follow.
    conn = await asyncpg.connect(populated.admin_dsn)
    try:
        rows = {
            r["chain_seq"]: dict(r)
            for r in await conn.fetch(
                """SELECT chain, chain_seq, prev_hash, hash, id, at, merchant_id, session_id, actor, action,
                          detail::text AS detail
                     FROM session.audit_log WHERE chain = $1""",
                MERCHANT_A,
            )
        }
    finally:
        await conn.close()
    second, third = rows[2], rows[3]
    forged = []
    for row, seq in ((second, 3), (third, 2)):
        row = {**row, "chain_seq": seq}
        forged.append((row["id"], seq, entry_hash(canonical_bytes("session", row), row["prev_hash"])))
    await _tamper(
        populated,
        "session.audit_log",
        "audit_log_append_only",
        *(f"UPDATE session.audit_log SET chain_seq = -{seq} WHERE id = {i}" for i, seq, _ in forged),
        *(
            f"UPDATE session.audit_log SET chain_seq = {seq}, hash = '{h}' WHERE id = {i}"
            for i, seq, h in forged
        ),
    )
    results, _ = await verify(populated.admin_dsn, ["session"], [])
    (broken,) = [c for c in results[0].chains if not c.ok]
    assert broken.problem_seq == 2
    assert "inserted out of order" in (broken.problem or "")


async def test_removed_newest_entries_are_caught_by_the_head_table_and_by_anchored_heads(
    populated: TestDatabase, tmp_path: Path
) -> None:
    anchored = _cli(populated, "--json")
    assert anchored.returncode == 0
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(anchored.stdout)

    await _tamper(
        populated,
        "session.audit_log",
        "audit_log_append_only",
        f"DELETE FROM session.audit_log WHERE chain = '{MERCHANT_A}' AND chain_seq >= 4",
    )
    done = _cli(populated)
    assert done.returncode == 1
    assert f"session: BROKEN chain {MERCHANT_A}: entries 4-5 removed" in done.stdout

    # The forger also moves the head row back: the chain is consistent again, only anchored heads tell.
    conn = await asyncpg.connect(populated.admin_dsn)
    try:
        await conn.execute(
            """UPDATE session.audit_chain_heads h SET seq = 3, hash = a.hash FROM session.audit_log a
                WHERE h.chain = $1 AND a.chain = $1 AND a.chain_seq = 3""",
            MERCHANT_A,
        )
    finally:
        await conn.close()
    assert _cli(populated).returncode == 0
    done = _cli(populated, "--expect-heads", str(heads_file))
    assert done.returncode == 1
    assert f"session chain {MERCHANT_A}: entries 4-5 removed" in done.stdout


async def test_a_whole_chain_rewrite_is_caught_by_anchored_heads(
    populated: TestDatabase, tmp_path: Path
) -> None:
    # Anchored heads as the services log them: one JSON `audit_anchor` line per chain head.
    conn = await asyncpg.connect(populated.admin_dsn)
    try:
        heads = await conn.fetch("SELECT chain, seq, hash FROM session.audit_chain_heads")
        lines = [
            json.dumps(
                {
                    "message": "audit_anchor",
                    "service": "session",
                    "chain": h["chain"],
                    "sequence": h["seq"],
                    "hash": h["hash"],
                }
            )
            for h in heads
        ]
        heads_file = tmp_path / "anchors.log"
        heads_file.write_text("\n".join(["not json at all", *lines]) + "\n")
        rows = [
            dict(r)
            for r in await conn.fetch(
                """SELECT chain, chain_seq, prev_hash, hash, id, at, merchant_id, session_id, actor, action,
                          detail::text AS detail
                     FROM session.audit_log WHERE chain = $1 ORDER BY chain_seq""",
                MERCHANT_A,
            )
        ]
    finally:
        await conn.close()
    # Rewrite the whole chain with another actor and every hash recomputed, head row included.
    prev = GENESIS_HASH
    statements = []
    for row in rows:
        row = {**row, "actor": "mallory", "prev_hash": prev}
        digest = entry_hash(canonical_bytes("session", row), prev)
        statements.append(
            f"UPDATE session.audit_log SET actor = 'mallory', prev_hash = '{prev}', hash = '{digest}' WHERE id = {row['id']}"
        )
        prev = digest
    statements.append(f"UPDATE session.audit_chain_heads SET hash = '{prev}' WHERE chain = '{MERCHANT_A}'")
    await _tamper(populated, "session.audit_log", "audit_log_append_only", *statements)

    assert _cli(populated, "--service", "session").returncode == 0  # consistent in itself
    done = _cli(populated, "--service", "session", "--expect-heads", str(heads_file))
    assert done.returncode == 1
    assert f"session chain {MERCHANT_A}: entry 5 rewritten" in done.stdout


async def test_new_entries_after_an_anchor_still_verify_against_it(
    populated: TestDatabase, tmp_path: Path
) -> None:
    results, problems = await verify(populated.admin_dsn, SERVICES, [])
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(json.dumps(result_json(results, problems)))
    await _session_rows(populated, MERCHANT_A, 2)
    await _keys_rows(populated, MERCHANT_B, 1)  # a chain that did not exist at the anchor
    done = _cli(populated, "--expect-heads", str(heads_file))
    assert done.returncode == 0, done.stdout
    assert "session: ok, 12 entries" in done.stdout


@pytest.mark.parametrize("text", ["", "garbage\n", "{}", "[]", '{"heads": []}'])
async def test_a_heads_file_with_no_head_is_refused_not_taken_as_nothing_to_check(
    populated: TestDatabase, tmp_path: Path, text: str
) -> None:
    """Given a file that holds no anchored head (empty, not JSON, or JSON of something else), verify said ok
    and exited 0: the check it was asked for, removal of the newest entries, silently did not run."""
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(text)
    done = _cli(populated, "--expect-heads", str(heads_file))
    assert done.returncode == 2, done.stdout
    assert "holds no anchored head" in done.stderr


async def test_a_heads_file_without_the_verified_services_heads_is_refused(
    populated: TestDatabase, tmp_path: Path
) -> None:
    results, problems = await verify(populated.admin_dsn, ["keys"], [])
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(json.dumps(result_json(results, problems)))
    done = _cli(populated, "--service", "session", "--expect-heads", str(heads_file))
    assert done.returncode == 2, done.stdout
    assert "holds no anchored head for session" in done.stderr


async def test_a_heads_file_missing_one_verified_services_heads_is_refused_not_passed(
    populated: TestDatabase, tmp_path: Path
) -> None:
    """Heads of keys only, all three services verified: session and billing were said ok (exit 0) though
    nothing anchored was there to check their newest entries against. A verified service that has entries
    but no anchored head in the file is named and refused (exit 2); verifying keys alone still passes."""
    results, problems = await verify(populated.admin_dsn, ["keys"], [])
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(json.dumps(result_json(results, problems)))
    done = _cli(populated, "--expect-heads", str(heads_file))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no anchored head" in done.stderr and "session" in done.stderr, done.stderr
    done = _cli(populated, "--service", "keys", "--expect-heads", str(heads_file))
    assert done.returncode == 0, done.stdout + done.stderr


async def test_fifty_concurrent_writers_on_one_chain_leave_no_fork_and_no_gap(clean_db: TestDatabase) -> None:
    writers, each = 50, 4
    conns = [await asyncpg.connect(clean_db.runtime_dsn("session")) for _ in range(writers)]
    start = asyncio.Event()

    async def write(conn: asyncpg.Connection, w: int) -> None:
        await start.wait()
        for i in range(each):
            if i % 2:
                # A multi-row statement, as the group writer does.
                await conn.execute(
                    """INSERT INTO session.audit_log (merchant_id, actor, action, detail)
                       SELECT $1::uuid, 'w' || $2::text, 'moved', jsonb_build_object('i', g)
                         FROM generate_series(1, 2) g""",
                    MERCHANT_A,
                    str(w),
                )
            else:
                async with conn.transaction():
                    await conn.execute(
                        "INSERT INTO session.audit_log (merchant_id, actor, action) VALUES ($1, $2, 'moved')",
                        MERCHANT_A,
                        f"w{w}",
                    )

    try:
        tasks = [asyncio.create_task(write(c, w)) for w, c in enumerate(conns)]
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
    finally:
        for conn in conns:
            await conn.close()
    total = writers * (each // 2) * 3
    conn = await asyncpg.connect(clean_db.admin_dsn)
    try:
        seqs = [
            r["chain_seq"]
            for r in await conn.fetch("SELECT chain_seq FROM session.audit_log ORDER BY chain_seq")
        ]
    finally:
        await conn.close()
    assert seqs == list(range(1, total + 1))
    results, problems = await verify(clean_db.admin_dsn, ["session"], [])
    assert results[0].ok and not problems
    assert result_lines(results, problems)[0].startswith(f"session: ok, {total} entries, head ")


async def test_a_service_runtime_role_verifies_its_own_service(populated: TestDatabase) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "paygate_runtime.cli.main", "audit", "verify", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "PAYGATE_DATABASE_URL": populated.runtime_dsn("keys")},
        )

    own = run("--service", "keys")
    assert own.returncode == 0, own.stdout + own.stderr
    assert own.stdout.startswith("keys: ok, 4 entries, head ")
    everything = run()
    assert everything.returncode == 2  # could not verify the others: neither ok nor broken
    assert "session: NOT VERIFIED" in everything.stdout and "keys: ok" in everything.stdout


@pytest.mark.parametrize("dsn", ["not-a-dsn", "postgresql://paygate:s3cret-pw@127.0.0.1:port/paygate"])
def test_a_malformed_database_url_is_one_line_and_exit_2(dsn: str) -> None:
    """A walk of README's command table: an unreachable database was one line, a malformed DSN a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "audit", "verify", "--database-url", dsn],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate audit verify: cannot read the database: "), lines
    assert "s3cret-pw" not in result.stderr
    assert result.returncode == 2
