"""Hash-chained audit (issue 20, contract §9): the canonical form of an audit entry, and the chain walk.

Pure: no I/O. The database computes each entry's hash in a BEFORE INSERT trigger (the `*_audit_hash_chain.sql`
migrations of session, keys and billing); `paygate audit verify` reads the rows and recomputes every hash here,
so the two serialisations must agree byte for byte. The trigger and this module are the two halves of one
definition; tests/unit/runtime/test_audit_chain.py pins the bytes.

Chains: each service's audit entries of one merchant form a chain (`chain` = the merchant id as text), and
entries without a merchant form the service's "system" chain. Each entry has `chain_seq` (1, 2, ... with no
gap), `prev_hash` (the previous entry's hash; 64 zeros for the first) and

    hash = hex(sha256(canonical_bytes(entry) + bytes.fromhex(prev_hash)))

Canonical form, version 1: b"paygate-audit-v1\\n" followed by one line per field, in the service's order
(`AUDIT_TABLES[service].fields` after the common service, chain, seq, id, at):

    <name>=~\\n                  for NULL
    <name>=<len>:<text>\\n       otherwise, <len> the UTF-8 byte length of <text>

with <text>: strings as they are; uuids in lowercase hyphenated form; integers in decimal; timestamps as
integer microseconds since 1970-01-01 UTC; jsonb as PostgreSQL's jsonb text output (`value::text`, which is
deterministic for a jsonb value: object keys ordered by length then bytes, ", " and ": " separators), read
by the verifier as text rather than re-serialised from Python objects. The length prefix makes the form
unambiguous whatever a text contains (newlines, "=", digits).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

VERSION_LINE = b"paygate-audit-v1\n"
GENESIS_HASH = "0" * 64
SYSTEM_CHAIN = "system"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AuditTable:
    """One service's audit table: where it is and which columns its canonical form covers, in order."""

    service: str
    table: str  # schema-qualified
    at_column: str
    fields: tuple[str, ...]  # after service, chain, seq, id, at
    json_fields: frozenset[str] = frozenset()

    def select_sql(self) -> str:
        """Every row of the table in chain order, with the columns `canonical_bytes` needs (jsonb as text)."""
        columns = ", ".join(f"{c}::text AS {c}" if c in self.json_fields else c for c in self.fields)
        return (
            f"SELECT chain, chain_seq, prev_hash, hash, id, {self.at_column} AS at, {columns} "
            f"FROM {self.table} ORDER BY chain, chain_seq"
        )


AUDIT_TABLES: dict[str, AuditTable] = {
    "session": AuditTable(
        "session",
        "session.audit_log",
        "at",
        ("merchant_id", "session_id", "actor", "action", "detail"),
        frozenset({"detail"}),
    ),
    "keys": AuditTable(
        "keys",
        "keys.audit_events",
        "occurred_at",
        ("merchant_id", "event_type", "object_type", "object_id", "session_id", "details"),
        frozenset({"details"}),
    ),
    "billing": AuditTable(
        "billing",
        "billing.billing_audit",
        "at",
        (
            "merchant_id",
            "event",
            "invoice_id",
            "mode",
            "number",
            "session_id",
            "currency",
            "total",
            "related_id",
            "actor",
            "db_user",
        ),
    ),
}


def micros(at: datetime) -> int:
    """Integer microseconds since the epoch, exactly (no float on the way)."""
    return (at - _EPOCH) // timedelta(microseconds=1)


def field_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return str(micros(value))
    raise TypeError(f"no canonical text for {type(value).__name__}")


def _line(name: str, value: Any) -> bytes:
    text = field_text(value)
    if text is None:
        return f"{name}=~\n".encode()
    data = text.encode()
    return f"{name}={len(data)}:".encode() + data + b"\n"


def canonical_bytes(service: str, row: Mapping[str, Any]) -> bytes:
    """The canonical form of one entry. `row` has chain, chain_seq, id, at and the service's fields."""
    spec = AUDIT_TABLES[service]
    parts = [
        VERSION_LINE,
        _line("service", service),
        _line("chain", row["chain"]),
        _line("seq", row["chain_seq"]),
        _line("id", row["id"]),
        _line("at", row["at"]),
    ]
    parts.extend(_line(name, row[name]) for name in spec.fields)
    return b"".join(parts)


def entry_hash(canonical: bytes, prev_hash: str) -> str:
    return hashlib.sha256(canonical + bytes.fromhex(prev_hash)).hexdigest()


@dataclass
class ChainReport:
    service: str
    chain: str
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    problem: str | None = None  # the first broken entry, in words
    problem_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


class ChainWalker:
    """Walks one chain entry by entry (rows in chain_seq order) and stops at the first broken entry, so that a
    chain of any length is checked in constant memory.

    Changed: the entry's hash does not match its content and its prev_hash. Removed: a sequence number is
    missing. Inserted out of order: an entry that is consistent in itself but does not follow the entry
    before it (its prev_hash is not that entry's hash), e.g. two entries swapped with their chain columns.
    Removal of the newest entries leaves a valid shorter chain: `check_heads` catches it against anchored
    heads (and `check_live_head` against the head table)."""

    def __init__(self, service: str, chain: str) -> None:
        self.report = ChainReport(service, chain)
        self._prev = GENESIS_HASH

    def feed(self, row: Mapping[str, Any]) -> bool:
        """Check the next row; False once the chain is broken (later rows are then ignored)."""
        report = self.report
        if not report.ok:
            return False
        expected_seq = report.head_seq + 1
        seq = row["chain_seq"]
        where = f"entry {seq} (id {row['id']})"
        if seq != expected_seq:
            if seq > expected_seq:
                missing = (
                    f"entry {expected_seq}"
                    if seq == expected_seq + 1
                    else f"entries {expected_seq}-{seq - 1}"
                )
                report.problem = f"{missing} removed: the chain goes from {expected_seq - 1} to {seq}"
                report.problem_seq = expected_seq
            else:
                report.problem = f"{where} repeats sequence number {seq} (a fork)"
                report.problem_seq = seq
            return False
        stored_prev = row["prev_hash"] or ""
        try:
            recomputed = entry_hash(canonical_bytes(report.service, row), stored_prev)
        except ValueError:  # a prev_hash that is not hex
            recomputed = None
        if recomputed != row["hash"]:
            report.problem = f"{where} changed: its hash does not match its content"
            report.problem_seq = seq
            return False
        if stored_prev != self._prev:
            report.problem = (
                f"{where} inserted out of order: its prev_hash is not the hash of entry {seq - 1}"
                if seq > 1
                else f"{where} inserted out of order: the first entry must have the zero prev_hash"
            )
            report.problem_seq = seq
            return False
        self._prev = row["hash"]
        report.entries = report.head_seq = seq
        report.head_hash = row["hash"]
        return True


def verify_chain(service: str, chain: str, rows: Iterable[Mapping[str, Any]]) -> ChainReport:
    """Walk one chain's rows (ordered by chain_seq); see `ChainWalker`."""
    walker = ChainWalker(service, chain)
    for row in rows:
        if not walker.feed(row):
            break
    return walker.report


def check_live_head(report: ChainReport, head_seq: int | None, head_hash: str | None) -> None:
    """Compare a valid chain with its row in `audit_chain_heads`, which the trigger moves with every entry:
    a head beyond the last entry means the newest entries were removed (unless the head row was edited too,
    which only anchored heads catch)."""
    if not report.ok or head_seq is None:
        return
    if head_seq > report.head_seq:
        report.problem = (
            f"entries {report.head_seq + 1}-{head_seq} removed: the chain head says {head_seq} entries, "
            f"{report.head_seq} remain"
        )
        report.problem_seq = report.head_seq + 1
    elif (head_seq, head_hash) != (report.head_seq, report.head_hash):
        report.problem = (
            f"the chain head ({head_seq}, {head_hash}) does not match the last entry {report.head_seq}"
        )
        report.problem_seq = report.head_seq


@dataclass(frozen=True)
class ExpectedHead:
    service: str
    chain: str
    seq: int
    hash: str


def parse_expected_heads(text: str) -> list[ExpectedHead]:
    """Anchored heads from a file: JSON lines (an `audit_anchor` log line per chain works as it is: objects
    with service, chain, sequence and hash; other lines are skipped), or one JSON document (a list of such
    objects, or the `heads` of `paygate audit verify --json`). Raises ValueError on a malformed head."""
    objects: list[Any] = []
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = None
        for line in text.splitlines():
            start = line.find("{")  # a log line may carry a prefix before its JSON
            if start < 0:
                continue
            try:
                objects.append(json.loads(line[start:]))
            except json.JSONDecodeError:
                continue
    if isinstance(document, list):
        objects = document
    elif isinstance(document, dict):
        objects = document.get("heads", [document])
    heads = []
    for obj in objects:
        if not isinstance(obj, dict) or not {"service", "chain", "sequence", "hash"} <= obj.keys():
            continue
        seq, digest = obj["sequence"], obj["hash"]
        if not isinstance(seq, int) or seq < 0 or not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"malformed anchored head: {obj!r}")
        heads.append(ExpectedHead(str(obj["service"]), str(obj["chain"]), seq, digest.lower()))
    return heads


def check_heads(
    expected: Iterable[ExpectedHead],
    reports: Mapping[tuple[str, str], ChainReport],
    hashes_at: Mapping[tuple[str, str, int], str],
) -> list[str]:
    """Problems of anchored heads against the chains as verified: a chain that is gone or shorter than its
    anchor (newest entries removed), or whose entry at the anchored position has another hash (rewritten)."""
    problems = []
    for head in expected:
        key = (head.service, head.chain)
        report = reports.get(key)
        if head.seq == 0:
            continue
        if report is None:
            problems.append(f"{head.service} chain {head.chain}: missing, anchored at entry {head.seq}")
        elif report.head_seq < head.seq and report.ok:
            problems.append(
                f"{head.service} chain {head.chain}: entries {report.head_seq + 1}-{head.seq} removed "
                f"(anchored head is entry {head.seq}, the chain ends at {report.head_seq})"
            )
        elif report.ok and hashes_at.get((head.service, head.chain, head.seq)) != head.hash:
            problems.append(
                f"{head.service} chain {head.chain}: entry {head.seq} rewritten "
                f"(anchored hash {head.hash}, now {hashes_at.get((head.service, head.chain, head.seq))})"
            )
    return problems


def heads_digest(heads: Iterable[tuple[str, int, str]]) -> str:
    """One hash over all of a service's chain heads (chain, seq, hash), sorted by chain: the anchor metric's
    value, so that a metric can stand for every merchant's head without a merchant id in its labels.
    sha256 over lines "<chain> <seq> <hash>\\n"."""
    lines = "".join(f"{chain} {seq} {digest}\n" for chain, seq, digest in sorted(heads))
    return hashlib.sha256(lines.encode()).hexdigest()
