"""`paygate audit verify`: recompute every audit hash chain from the database and name the first broken entry.

An OPERATOR tool (contract §9). It reads the audit tables of session, keys and billing (the gateway has none)
with the DSN of `--database-url`, else $PAYGATE_DATABASE_URL, else the `database_url` of a running `paygate up`
stack ($PAYGATE_HOME/stack.json). Any role that may SELECT the audit tables and their `audit_chain_heads` works:
the database owner for all services, or one service's runtime role with `--service`.

For each service it prints `<service>: ok, N entries, head <digest>` (N: entries over all its chains; the
digest: sha256 over the sorted "<chain> <seq> <hash>" lines of every chain head, the value the services
anchor every minute), or `<service>: BROKEN ...` naming the chain and the first entry that was changed,
removed or inserted out of order, and exits 1 if any chain is broken. `--expect-heads FILE` also checks heads
anchored earlier (the services' `audit_anchor` log lines as JSON lines, or the output of `--json`): a chain
shorter than its anchor lost its newest entries, and another hash at an anchored position means the chain was
rewritten from there (even with every hash recomputed). `--json` prints the result and every chain head, to keep
as the next run's `--expect-heads`.

Rows are streamed with a server-side cursor, so a chain of any length is checked in constant memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from paygate_runtime.audit_chain import (
    AUDIT_TABLES,
    ChainReport,
    ChainWalker,
    ExpectedHead,
    check_heads,
    check_live_head,
    heads_digest,
    parse_expected_heads,
)
from paygate_runtime.database_errors import DATABASE_ERRORS, describe
from paygate_runtime.stack import paygate_home, read_json


@dataclass
class ServiceResult:
    service: str
    chains: list[ChainReport] = field(default_factory=list)
    missing: str | None = None  # why the service's audit was not read (no table in this database)
    unreadable: str | None = None  # the role may not read it: not verified (exit 2 unless something broke)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains)

    @property
    def entries(self) -> int:
        return sum(c.entries for c in self.chains)

    @property
    def digest(self) -> str:
        return heads_digest((c.chain, c.head_seq, c.head_hash) for c in self.chains)


async def verify_service(
    conn: asyncpg.Connection,
    service: str,
    hashes_at: dict[tuple[str, str, int], str],
    wanted: set[tuple[str, str, int]],
) -> ServiceResult:
    spec = AUDIT_TABLES[service]
    result = ServiceResult(service)
    schema = spec.table.split(".")[0]
    has_chain = await conn.fetchval(
        # The catalogs, not information_schema: that hides the tables a role may not read, and such a table
        # must show as not verified, not as missing.
        """SELECT EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                                             JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = 'chain_seq'
                             AND NOT a.attisdropped)""",
        schema,
        spec.table.split(".")[1],
    )
    if not has_chain:
        result.missing = f"no hash-chained {spec.table} in this database"
        return result
    walker: ChainWalker | None = None
    # One snapshot for the rows and the heads: a writer committing meanwhile changes neither.
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        async for row in conn.cursor(spec.select_sql(), prefetch=2000):
            if walker is None or walker.report.chain != row["chain"]:
                walker = ChainWalker(service, row["chain"])
                result.chains.append(walker.report)
            if walker.feed(row):
                key = (service, row["chain"], row["chain_seq"])
                if key in wanted:
                    hashes_at[key] = row["hash"]
        heads = {
            r["chain"]: (r["seq"], r["hash"])
            for r in await conn.fetch(f"SELECT chain, seq, hash FROM {schema}.audit_chain_heads")
        }
    seen = {c.chain for c in result.chains}
    for report in result.chains:
        check_live_head(report, *heads.get(report.chain, (None, None)))
    for chain, (seq, _digest) in sorted(heads.items()):
        if chain not in seen and seq > 0:
            report = ChainReport(
                service, chain, problem=f"all {seq} entries removed (the chain head remains)"
            )
            report.problem_seq = 1
            result.chains.append(report)
    return result


async def verify(
    dsn: str, services: list[str], expected: list[ExpectedHead]
) -> tuple[list[ServiceResult], list[str]]:
    wanted = {(h.service, h.chain, h.seq) for h in expected if h.service in services}
    hashes_at: dict[tuple[str, str, int], str] = {}
    conn = await asyncpg.connect(dsn, timeout=10)
    results = []
    try:
        for service in services:
            try:
                results.append(await verify_service(conn, service, hashes_at, wanted))
            except asyncpg.InsufficientPrivilegeError as error:
                results.append(ServiceResult(service, unreadable=f"{error} (use an owner DSN, or --service)"))
    finally:
        await conn.close()
    reports = {(c.service, c.chain): c for r in results for c in r.chains}
    read = {r.service for r in results if not r.unreadable and not r.missing}
    problems = check_heads([h for h in expected if h.service in read], reports, hashes_at)
    return results, problems


def _anchored_problems(service: str, problems: list[str]) -> list[str]:
    """The anchored-head problems of one service (check_heads words each as "<service> chain <chain>: ...")."""
    return [p.removeprefix(f"{service} ") for p in problems if p.startswith(f"{service} chain ")]


def result_lines(results: list[ServiceResult], problems: list[str]) -> list[str]:
    lines = []
    for result in results:
        anchored = _anchored_problems(result.service, problems)
        if result.missing:
            lines.append(f"{result.service}: skipped, {result.missing}")
        elif result.unreadable:
            lines.append(f"{result.service}: NOT VERIFIED, {result.unreadable}")
        elif result.ok and anchored:
            # Consistent in itself, but short of (or other than) what was anchored: never "ok".
            lines.extend(f"{result.service}: BROKEN {problem}" for problem in anchored)
        elif result.ok:
            lines.append(f"{result.service}: ok, {result.entries} entries, head {result.digest}")
        else:
            for report in result.chains:
                if not report.ok:
                    lines.append(f"{result.service}: BROKEN chain {report.chain}: {report.problem}")
    lines.extend(f"anchored head check failed: {p}" for p in problems)
    return lines


def result_json(results: list[ServiceResult], problems: list[str]) -> dict[str, Any]:
    return {
        "ok": all(r.ok for r in results) and not problems,
        "services": {
            r.service: {
                "ok": r.ok and not _anchored_problems(r.service, problems),
                "skipped": r.missing,
                "unreadable": r.unreadable,
                "entries": r.entries,
                "head": r.digest,
                "broken": [
                    {"chain": c.chain, "sequence": c.problem_seq, "problem": c.problem}
                    for c in r.chains
                    if not c.ok
                ],
            }
            for r in results
        },
        "problems": problems,
        "heads": [
            {"service": c.service, "chain": c.chain, "sequence": c.head_seq, "hash": c.head_hash}
            for r in results
            for c in r.chains
            if c.ok
        ],
    }


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="audit_command", required=True)
    v = sub.add_parser("verify", help="recompute every audit hash chain; exit 1 on a broken one")
    v.add_argument(
        "--service", choices=sorted(AUDIT_TABLES), action="append", help="only this service (repeatable)"
    )
    v.add_argument(
        "--expect-heads", type=Path, metavar="FILE", help="heads anchored earlier (JSON lines or --json)"
    )
    v.add_argument("--json", action="store_true", help="print the result and every chain head as JSON")
    v.add_argument("--database-url", help="DSN (default: $PAYGATE_DATABASE_URL, else the running stack's)")
    v.add_argument("--home", help="PAYGATE_HOME of the running stack")


def _stack_dsn(home: str | None) -> str | None:
    """The running stack's DSN, or None (no stack.json, or one without a `database_url`)."""
    stack = read_json(paygate_home(home) / "stack.json")
    dsn = stack.get("database_url") if stack else None
    return dsn if isinstance(dsn, str) and dsn else None


def run(args: argparse.Namespace) -> int:
    dsn = args.database_url or os.environ.get("PAYGATE_DATABASE_URL") or _stack_dsn(args.home)
    if dsn is None:
        # Exit 2 like an unreachable database: nothing was verified, and exit 1 means a broken chain.
        print(
            "paygate audit verify: no database to verify: give --database-url, set PAYGATE_DATABASE_URL, "
            "or start a stack with `paygate up`",
            file=sys.stderr,
        )
        return 2
    services = args.service or list(AUDIT_TABLES)
    expected: list[ExpectedHead] = []
    if args.expect_heads:
        try:
            expected = parse_expected_heads(args.expect_heads.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            print(f"paygate audit verify: cannot read {args.expect_heads}: {error}", file=sys.stderr)
            return 2
        # A file with no head for the chains asked about (empty, the wrong file, another service's) would turn
        # the check it stands for, removal of the newest entries, silently off.
        if not any(head.service in services for head in expected):
            print(
                f"paygate audit verify: {args.expect_heads} holds no anchored head for {', '.join(services)}",
                file=sys.stderr,
            )
            return 2
    try:
        results, problems = asyncio.run(verify(dsn, services, expected))
    except DATABASE_ERRORS as error:
        print(f"paygate audit verify: cannot read the database: {describe(error)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result_json(results, problems), indent=2))
    else:
        for line in result_lines(results, problems):
            print(line)
    if not all(r.ok for r in results) or problems:
        return 1
    # A verified service with entries but no anchored head in the file had its newest entries checked against
    # nothing: say which, and refuse, rather than let "ok" stand for a check that did not run.
    unanchored = sorted(
        r.service for r in results if r.entries and not any(h.service == r.service for h in expected)
    )
    if args.expect_heads and unanchored:
        print(
            f"paygate audit verify: {args.expect_heads} holds no anchored head for {', '.join(unanchored)}; "
            "verify the services it has heads for with --service, or give their anchors too",
            file=sys.stderr,
        )
        return 2
    return 2 if any(r.unreadable for r in results) else 0
