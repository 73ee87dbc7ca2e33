"""checkov (from PyPI, in .venv/tools/checkov: `python3 scripts/dev.py setup` installs it) passes every overlay.

A check that does not apply is skipped in place, on the object, with an annotation that says why
(`checkov.io/skipN: CKV_K8S_NN=<reason>`); anything else checkov flags fails this test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy

OVERLAYS = ("dev", "prod", "external-db")


def checkov_binary() -> str:
    bundled = Path(sys.prefix) / "tools" / "checkov" / "bin" / "checkov"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("checkov")
    if found is None:
        pytest.fail("checkov is not installed: run `python3 scripts/dev.py setup` (.venv/tools/checkov)")
    return found


def rendered(overlay: str) -> list[dict[str, Any]]:
    try:
        return check_deploy.build_overlay(overlay)
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


def test_checkov_passes_every_overlay_with_reasoned_skips_only(tmp_path: Path) -> None:
    for overlay in OVERLAYS:
        (tmp_path / f"{overlay}.yaml").write_text(yaml.safe_dump_all(rendered(overlay)))
    result = subprocess.run(
        [
            checkov_binary(),
            "--directory",
            str(tmp_path),
            "--framework",
            "kubernetes",
            "--skip-download",  # no network: the built-in checks only
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.strip(), f"checkov printed nothing: {result.stderr[-2000:]}"
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    (report,) = [r for r in reports if r.get("check_type") == "kubernetes"]
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] > 100
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']}" for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)


def test_every_checkov_skip_gives_a_reason() -> None:
    for overlay in OVERLAYS:
        for obj in rendered(overlay):
            for key, value in (obj.get("metadata", {}).get("annotations") or {}).items():
                if not key.startswith("checkov.io/skip"):
                    continue
                check, sep, reason = value.partition("=")
                assert sep and check.startswith("CKV_"), f"{check_deploy.object_name(obj)}: {value}"
                assert len(reason.split()) >= 6, (
                    f"{check_deploy.object_name(obj)}: {check} needs a real reason"
                )
                assert "=" not in reason, "checkov splits the annotation on '='"
