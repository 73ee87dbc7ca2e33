"""`paygate audit verify`: what it says when it verified nothing, or found a chain short of its anchor
(README "Records an auditor trusts").

Exit 1 means a broken chain, the one answer an operator's alert must not get wrong; a run that verified nothing
(no `--database-url`, no $PAYGATE_DATABASE_URL, and no running stack to take the DSN from) is exit 2, as an
unreachable database already is, in one line and without a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from paygate_runtime.audit_chain import ChainReport
from paygate_runtime.cli.audit_cmd import ServiceResult, result_json, result_lines


def _verify(home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "audit", "verify", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},  # no PAYGATE_DATABASE_URL, no PAYGATE_HOME
    )


@pytest.mark.parametrize("stack_json", [None, "{}", "not json"], ids=["no-stack", "no-dsn", "unreadable"])
def test_no_database_to_verify_is_exit_2_not_a_broken_chain(tmp_path: Path, stack_json: str | None) -> None:
    if stack_json is not None:
        (tmp_path / "stack.json").write_text(stack_json)
    result = _verify(tmp_path)
    assert result.returncode == 2, result.stderr  # 1 would read as a broken chain
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("paygate audit verify: "), lines
    assert "--database-url" in lines[0]
    assert result.stdout == ""


def test_a_service_that_fails_its_anchored_heads_is_not_printed_ok() -> None:
    """Newest entries removed and the head row moved back: only the anchored heads tell. The walk of README's
    `--expect-heads` printed `session: ok, ...` above the failure (exit 1); the service line now says BROKEN,
    in README's `<service>: BROKEN chain <chain>: ...` form, and its JSON `ok` is false."""
    chain = "6f1c1b9e-0000-4000-8000-000000000001"
    intact = ChainReport("session", chain)
    intact.entries, intact.head_seq, intact.head_hash = 18, 18, "ab" * 32
    results = [ServiceResult("session", chains=[intact]), ServiceResult("keys")]
    problem = (
        f"session chain {chain}: entries 19-19 removed (anchored head is entry 19, the chain ends at 18)"
    )

    lines = result_lines(results, [problem])
    assert not any(line.startswith("session: ok") for line in lines), lines
    assert f"session: BROKEN chain {chain}: entries 19-19 removed" in "\n".join(lines)
    assert any(line.startswith("keys: ok") for line in lines), lines
    services = result_json(results, [problem])["services"]
    assert services["session"]["ok"] is False and services["keys"]["ok"] is True
