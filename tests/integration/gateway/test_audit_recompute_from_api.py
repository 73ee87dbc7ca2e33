"""An auditor recomputes every audit hash from GET /v1/audit alone (contract §9: hash = SHA-256 over the entry's
canonical form and prev_hash).

The auditor here has nothing but HTTP replies: a merchant's paid session (a live one beside it, whose entries the
test key does not see), a customer key rolled and an invoice voided; then every page of GET /v1/audit, each
entry's hash recomputed from its `canonical` text and `prev_hash`, the canonical text read back to be about that
very entry (service, chain, sequence, id, time), and the links between consecutive sequence numbers checked. The
other mode's entries are gaps in the sequence: the key of that mode lists them, and the two lists together link
whole. No canonical text names the other mode's objects or another merchant."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.stack import Merchant, ServiceStack
from support.two_modes import (
    LIVE_SECRETS_ENV,
    TwoModeMerchant,
    create_session,
    fulfilled,
    send_onecom,
    two_mode_merchant,
)

GENESIS = "0" * 64
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def stack_env(stack_env: dict[str, str]) -> dict[str, str]:
    return {**stack_env, **LIVE_SECRETS_ENV}


def parse_canonical(text: str) -> tuple[str, dict[str, str | None]]:
    """The version line and the fields of a canonical form, read as an auditor would: `<name>=~` for NULL,
    `<name>=<byte length>:<text>` otherwise, one per line (the length lets a text hold newlines)."""
    data = text.encode()
    version, _, rest = data.partition(b"\n")
    fields: dict[str, str | None] = {}
    while rest:
        name, _, rest = rest.partition(b"=")
        if rest.startswith(b"~\n"):
            fields[name.decode()], rest = None, rest[2:]
            continue
        length, _, rest = rest.partition(b":")
        value, newline, rest = (
            rest[: int(length)],
            rest[int(length) : int(length) + 1],
            rest[int(length) + 1 :],
        )
        assert newline == b"\n", (name, text)
        fields[name.decode()] = value.decode()
    return version.decode(), fields


async def all_pages(stack: ServiceStack, key: Merchant, limit: int = 7) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(200):
        status, page = await stack.request(
            "GET",
            f"/v1/audit?limit={limit}" + (f"&starting_after={cursor}" if cursor else ""),
            headers=key.headers,
        )
        assert status == 200, page
        seen.extend(page["data"])
        if not page["has_more"]:
            return seen
        cursor = page["data"][-1]["id"]
    raise AssertionError("no last page")


def check_entry(entry: dict[str, Any], merchant_id: str) -> None:
    """What an auditor checks of one entry with the reply alone."""
    assert "canonical" in entry, f"no canonical form in the entry: {sorted(entry)}"
    canonical: str = entry["canonical"]
    digest = hashlib.sha256(canonical.encode() + bytes.fromhex(entry["prev_hash"])).hexdigest()
    assert digest == entry["hash"], (entry["id"], canonical)
    version, fields = parse_canonical(canonical)
    assert version == entry["canonical_version"] == "paygate-audit-v1"
    # The canonical form is this entry's: its service, its merchant's chain, its place and row, its time.
    at = _EPOCH + timedelta(microseconds=int(fields["at"] or 0))
    assert (fields["service"], fields["chain"], fields["seq"], fields["id"], at) == (
        entry["service"],
        merchant_id,
        str(entry["sequence"]),
        entry["id"].rpartition("_")[2],
        datetime.strptime(entry["at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
    ), entry


def check_links(entries: list[dict[str, Any]]) -> dict[str, list[int]]:
    """Consecutive sequence numbers of one service (one chain: the merchant's) link prev_hash to the previous
    hash; the first entry links to the genesis hash. Returns each service's gaps (sequence numbers not listed)."""
    gaps: dict[str, list[int]] = {}
    for service in {e["service"] for e in entries}:
        chain = sorted((e for e in entries if e["service"] == service), key=lambda e: e["sequence"])
        assert len({e["sequence"] for e in chain}) == len(chain), service
        if chain[0]["sequence"] == 1:
            assert chain[0]["prev_hash"] == GENESIS, chain[0]
        for before, after in itertools.pairwise(chain):
            if after["sequence"] == before["sequence"] + 1:
                assert after["prev_hash"] == before["hash"], (before, after)
        listed = {e["sequence"] for e in chain}
        gaps[service] = sorted(set(range(1, chain[-1]["sequence"] + 1)) - listed)
    return gaps


async def _paid(stack: ServiceStack, key: Merchant, mode: str) -> dict[str, Any]:
    session = await create_session(stack, key)
    await send_onecom(stack, mode, session)
    return await fulfilled(stack, key, session["id"])


async def _merchant_actions(
    stack: ServiceStack, owner: TwoModeMerchant
) -> tuple[dict[str, Any], dict[str, Any]]:
    live = await _paid(stack, owner.live, "live")
    paid = await _paid(stack, owner.test, "test")
    status, rolled = await stack.request(
        "POST",
        f"/v1/api_keys/{paid['api_key_id']}/roll",
        json={"grace_period": 0},
        headers=owner.test.headers,
    )
    assert status == 200, rolled
    status, voided = await stack.request(
        "POST",
        f"/v1/invoices/{paid['invoice_id']}/void",
        json={"reason": "audit"},
        headers=owner.test.headers,
    )
    assert status == 200, voided
    # A live action after the test ones: the test key's chains then have gaps between listed entries.
    status, rolled_live = await stack.request(
        "POST",
        f"/v1/api_keys/{live['api_key_id']}/roll",
        json={"grace_period": 0},
        headers=owner.live.headers,
    )
    assert status == 200, rolled_live
    return paid, live


async def test_every_listed_hash_is_recomputed_from_the_reply_alone(stack: ServiceStack) -> None:
    owner = await two_mode_merchant(stack, "Auditee", "aud")
    stranger = await stack.create_merchant("Stranger", "stg")
    await create_session(stack, stranger)
    paid, live = await _merchant_actions(stack, owner)

    entries = await all_pages(stack, owner.test)
    assert {e["service"] for e in entries} == {"session", "keys", "billing"}
    assert {"invoice_voided", "api_key_rolled"} <= {e["action"] for e in entries}, entries
    for entry in entries:
        check_entry(entry, owner.id)
    gaps = check_links(entries)
    # The live session's entries are not listed to the test key: gaps in its session, billing and keys chains.
    assert gaps["session"] and gaps["billing"] and gaps["keys"], gaps

    # Nothing in the canonical texts names the other mode's objects or another merchant.
    texts = "".join(e["canonical"] for e in entries)
    for foreign in (live["id"], live["invoice_id"], live["api_key_id"], stranger.id):
        assert foreign not in texts, foreign

    # The live key's list fills the gaps: across both lists every link holds and each chain is whole.
    live_entries = await all_pages(stack, owner.live)
    for entry in live_entries:
        check_entry(entry, owner.id)
    both = {e["id"]: e for e in entries + live_entries}
    assert all(not g for g in check_links(list(both.values())).values())
    for foreign in (paid["id"], paid["invoice_id"], paid["api_key_id"]):
        assert foreign not in "".join(e["canonical"] for e in live_entries), foreign
