"""Rules for the code itself that no linter checks. Every `type: ignore` names the error codes it silences
and says why on the same line (`# type: ignore[code]  # why`): an ignore without a reason hides a type error
nobody can judge later (issue 15)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# The code mypy checks or may check, and the tools around it. Tests are left out: mypy does not check them.
CHECKED = [
    "paygate_runtime",
    "paygate_dev",
    "session_service",
    "billing_service",
    "keys_service",
    "webhook_gateway",
    "scripts",
    "bench",
]
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)$")
WITH_REASON = re.compile(r"^\[[a-z0-9-]+(?:\s*,\s*[a-z0-9-]+)*\]\s+#\s*\S")


def ignores_without_reason(text: str) -> list[int]:
    lines = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = IGNORE.search(line)
        if match and not WITH_REASON.match(match.group("rest")):
            lines.append(number)
    return lines


def test_every_type_ignore_names_its_code_and_a_reason() -> None:
    bad = []
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            for number in ignores_without_reason(path.read_text(encoding="utf-8")):
                bad.append(f"{path.relative_to(ROOT)}:{number}")
    assert not bad, "type: ignore without `[code]  # reason` on the line:\n" + "\n".join(bad)


def test_the_rule_tells_a_reasoned_ignore_from_a_bare_one() -> None:
    assert ignores_without_reason("x = f()  # type: ignore[arg-type]  # the stubs omit None\n") == []
    assert ignores_without_reason("x = f()  # type: ignore[arg-type, union-attr]  # why\n") == []
    assert ignores_without_reason("x = f()  # type: ignore\n") == [1]
    assert ignores_without_reason("x = f()  # type: ignore[arg-type]\n") == [1]
    assert ignores_without_reason("x = f()  # type:ignore[arg-type]  #\n") == [1]
