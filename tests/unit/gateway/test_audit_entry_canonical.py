"""GET /v1/audit's entry carries its canonical form (contract §9): through the JSON reply the text comes back byte
for byte, recomputes the entry's hash with its prev_hash, and a text changed in one byte no longer does."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime

from paygate.common.v1 import common_pb2
from paygate_runtime.audit_chain import GENESIS_HASH, VERSION_LINE, canonical_bytes, entry_hash
from webhook_gateway.entrypoints.routes_audit import entry_json

MERCHANT = uuid.UUID("6f1c2a9e-0d3b-4c55-8a77-1e2f3a4b5c6d")
AT = datetime(2026, 12, 7, 11, 41, 26, 123456, tzinfo=UTC)


def _listed(prev_hash: str = GENESIS_HASH) -> dict[str, object]:
    """One session entry as the gateway answers it, JSON round trip included; its text has a newline, a
    non-ASCII actor and an "=" inside a field, which the length prefixes keep unambiguous."""
    row = {
        "chain": str(MERCHANT),
        "chain_seq": 3,
        "id": 42,
        "at": AT,
        "merchant_id": MERCHANT,
        "session_id": None,
        "actor": "merchant_key:Zoë",
        "action": "webhook_endpoint_updated",
        "detail": '{"note": "a\\nb=c", "changed": ["url"]}',
    }
    canonical = canonical_bytes("session", row)
    entry = common_pb2.AuditEntry(
        id="session_42",
        service="session",
        action="webhook_endpoint_updated",
        at_us=1_796_600_000_000_000,
        hash=entry_hash(canonical, prev_hash),
        prev_hash=prev_hash,
        sequence=3,
        canonical=canonical.decode(),
        canonical_version=VERSION_LINE.decode().strip(),
    )
    listed: dict[str, object] = json.loads(json.dumps(entry_json(entry)))
    return listed


def _recomputed(listed: dict[str, object]) -> str:
    return hashlib.sha256(
        str(listed["canonical"]).encode() + bytes.fromhex(str(listed["prev_hash"]))
    ).hexdigest()


def test_the_listed_canonical_text_recomputes_the_listed_hash() -> None:
    listed = _listed("ab" * 32)
    assert listed["canonical_version"] == "paygate-audit-v1"
    assert str(listed["canonical"]).startswith("paygate-audit-v1\nservice=7:session\n")
    assert _recomputed(listed) == listed["hash"]


def test_one_byte_changed_no_longer_matches() -> None:
    listed = _listed()
    text = str(listed["canonical"])
    for at in (text.index("seq=") + 6, text.index("Zo"), len(text) - 2):
        tampered = {**listed, "canonical": text[:at] + chr(ord(text[at]) ^ 1) + text[at + 1 :]}
        assert len(str(tampered["canonical"]).encode()) == len(text.encode())
        assert _recomputed(tampered) != listed["hash"], at
    # Nor does the right text with another prev_hash: the link is part of the hash.
    assert _recomputed({**listed, "prev_hash": "00" * 31 + "01"}) != listed["hash"]
