"""The canonical form and chain walk of the hash-chained audit (paygate_runtime/audit_chain.py), pure.

The database trigger (the *_audit_hash_chain.sql migrations) computes the same bytes; the integration tests
(tests/integration/audit) hold the two together on real rows. Here the bytes themselves are pinned, so a change
of the form cannot pass unnoticed: every stored hash would stop verifying."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from paygate_runtime.audit_chain import (
    GENESIS_HASH,
    ChainReport,
    ExpectedHead,
    canonical_bytes,
    check_heads,
    check_live_head,
    entry_hash,
    heads_digest,
    micros,
    parse_expected_heads,
    verify_chain,
)

MERCHANT = uuid.UUID("6f1c2a9e-0d3b-4c55-8a77-1e2f3a4b5c6d")
SESSION = uuid.UUID("00000000-0000-4000-8000-000000000001")
AT = datetime(2026, 12, 5, 18, 30, 1, 123456, tzinfo=UTC)


def _row(seq: int, prev: str, **changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "chain": str(MERCHANT),
        "chain_seq": seq,
        "id": 40 + seq,
        "at": AT,
        "merchant_id": MERCHANT,
        "session_id": SESSION,
        "actor": "api · Zoë",
        "action": "session_created",
        "detail": '{"n": 1, "note": "a\\nb"}',
        "prev_hash": prev,
    }
    row.update(changes)
    row["hash"] = entry_hash(canonical_bytes("session", row), str(row["prev_hash"]))
    return row


def _chain(n: int) -> list[dict[str, object]]:
    rows, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        row = _row(seq, prev)
        rows.append(row)
        prev = str(row["hash"])
    return rows


def test_the_canonical_form_is_pinned() -> None:
    row = _row(1, GENESIS_HASH)
    assert canonical_bytes("session", row) == (
        b"paygate-audit-v1\n"
        b"service=7:session\n"
        b"chain=36:6f1c2a9e-0d3b-4c55-8a77-1e2f3a4b5c6d\n"
        b"seq=1:1\n"
        b"id=2:41\n"
        b"at=16:1796495401123456\n"
        b"merchant_id=36:6f1c2a9e-0d3b-4c55-8a77-1e2f3a4b5c6d\n"
        b"session_id=36:00000000-0000-4000-8000-000000000001\n"
        + "actor=11:api · Zoë\n".encode()
        + b"action=15:session_created\n"
        b'detail=24:{"n": 1, "note": "a\\nb"}\n'
    )
    assert row["hash"] == hashlib.sha256(canonical_bytes("session", row) + bytes(32)).hexdigest()


def test_null_and_empty_text_differ_and_numbers_are_exact() -> None:
    base = {"chain": "system", "chain_seq": 1, "id": 1, "at": AT}
    fields = dict.fromkeys(("merchant_id", "session_id", "actor", "action", "detail"))
    with_null = canonical_bytes("session", {**base, **fields})
    with_empty = canonical_bytes("session", {**base, **fields, "actor": ""})
    assert b"actor=~\n" in with_null and b"actor=0:\n" in with_empty
    billing = dict.fromkeys(
        (
            "merchant_id",
            "event",
            "invoice_id",
            "mode",
            "number",
            "session_id",
            "currency",
            "related_id",
            "actor",
        )
    )
    total = Decimal(10**30 + 7)
    form = canonical_bytes("billing", {**base, **billing, "total": total, "db_user": "owner"})
    assert b"total=31:1000000000000000000000000000007\n" in form
    assert b"total=4:1000\n" in canonical_bytes(
        "billing", {**base, **billing, "total": Decimal("1E+3"), "db_user": "o"}
    )


def test_timestamps_are_exact_utc_microseconds() -> None:
    assert micros(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert micros(AT) == 1796495401123456
    # The same instant in another zone is the same number.
    assert micros(AT.astimezone(datetime.now().astimezone().tzinfo)) == micros(AT)


def test_an_intact_chain_verifies() -> None:
    rows = _chain(4)
    report = verify_chain("session", str(MERCHANT), rows)
    assert report.ok and report.entries == 4 and report.head_hash == rows[-1]["hash"]


@pytest.mark.parametrize(
    ("tamper", "seq", "words"),
    [
        (lambda rows: rows[2].update(actor="mallory"), 3, "changed"),
        (lambda rows: rows[0].update(detail='{"n": 2}'), 1, "changed"),
        (lambda rows: rows.pop(1), 2, "entry 2 removed"),
        (lambda rows: rows.insert(2, dict(rows[1])), 2, "fork"),
        (lambda rows: rows.__setitem__(0, _row(1, "ab" * 32)), 1, "out of order"),
    ],
)
def test_the_first_broken_entry_is_named(tamper, seq: int, words: str) -> None:  # type: ignore[no-untyped-def]
    rows = _chain(5)
    tamper(rows)
    report = verify_chain("session", str(MERCHANT), rows)
    assert not report.ok
    assert report.problem_seq == seq
    assert words in (report.problem or "")


def test_a_swap_with_recomputed_self_hashes_is_out_of_order() -> None:
    rows = _chain(4)
    second = _row(3, str(rows[1]["prev_hash"]), id=rows[1]["id"])  # entry 2's content, moved to position 3
    third = _row(2, str(rows[2]["prev_hash"]), id=rows[2]["id"])
    report = verify_chain("session", str(MERCHANT), [rows[0], third, second, rows[3]])
    assert report.problem_seq == 2 and "inserted out of order" in (report.problem or "")


def test_the_live_head_catches_removed_newest_entries() -> None:
    rows = _chain(5)
    report = verify_chain("session", str(MERCHANT), rows[:3])
    check_live_head(report, 5, str(rows[4]["hash"]))
    assert report.problem_seq == 4 and "entries 4-5 removed" in (report.problem or "")
    intact = verify_chain("session", str(MERCHANT), rows)
    check_live_head(intact, 5, str(rows[4]["hash"]))
    assert intact.ok


def test_anchored_heads_catch_removal_and_rewrite() -> None:
    rows = _chain(5)
    chain = str(MERCHANT)
    anchored = [ExpectedHead("session", chain, 5, str(rows[4]["hash"]))]
    shorter = {("session", chain): verify_chain("session", chain, rows[:3])}
    assert "entries 4-5 removed" in check_heads(anchored, shorter, {})[0]
    whole = {("session", chain): verify_chain("session", chain, rows)}
    assert check_heads(anchored, whole, {("session", chain, 5): str(rows[4]["hash"])}) == []
    assert "entry 5 rewritten" in check_heads(anchored, whole, {("session", chain, 5): "0" * 64})[0]
    assert "missing" in check_heads(anchored, {}, {})[0]


def test_expected_heads_parse_from_log_lines_and_from_verify_json() -> None:
    log = "\n".join(
        [
            "some other line",
            json.dumps(
                {"msg": "audit_anchor", "service": "keys", "chain": "system", "sequence": 3, "hash": "A" * 64}
            ),
            '2026-12-05 {"msg": "audit_anchor", "service": "session", "chain": "m", "sequence": 1, "hash": "'
            + "b" * 64
            + '"}',
        ]
    )
    assert parse_expected_heads(log) == [
        ExpectedHead("keys", "system", 3, "a" * 64),
        ExpectedHead("session", "m", 1, "b" * 64),
    ]
    document = json.dumps({"heads": [{"service": "billing", "chain": "m", "sequence": 2, "hash": "c" * 64}]})
    assert parse_expected_heads(document) == [ExpectedHead("billing", "m", 2, "c" * 64)]
    with pytest.raises(ValueError):
        parse_expected_heads(json.dumps([{"service": "s", "chain": "c", "sequence": "x", "hash": "d" * 64}]))


def test_the_heads_digest_is_order_independent_and_defined() -> None:
    heads = [("b", 2, "f" * 64), ("a", 1, "e" * 64)]
    expected = hashlib.sha256(f"a 1 {'e' * 64}\nb 2 {'f' * 64}\n".encode()).hexdigest()
    assert heads_digest(heads) == heads_digest(reversed(heads)) == expected


def test_an_empty_report_is_ok() -> None:
    assert ChainReport("session", "system").ok
