"""`python3 scripts/dev.py test` (README's test command, and CI's) runs the suite with one pytest-xdist worker per
core, at most four, files kept whole on one worker; a command line that chooses its own (`-n 0`, `-p no:xdist`)
is left alone. A single process spent half of a 2-core CI machine's 15 to 21 minutes waiting."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DEV = Path(__file__).resolve().parents[2] / "scripts" / "dev.py"


def _dev() -> ModuleType:
    spec = importlib.util.spec_from_file_location("paygate_dev_script_workers", DEV)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("cores", "expected"), [(2, "2"), (8, "4"), (None, None), (1, None)])
def test_the_suite_runs_one_worker_per_core(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, expected: str | None
) -> None:
    dev = _dev()
    monkeypatch.setattr(dev.os, "cpu_count", lambda: cores)
    wanted = ["-n", expected, "--dist", "loadfile"] if expected else []
    assert dev.parallel_args([]) == wanted
    assert dev.parallel_args(["tests/unit", "-k", "money"]) == wanted


@pytest.mark.parametrize(
    "chosen", [["-n", "0"], ["-n0"], ["--numprocesses=3"], ["-p", "no:xdist"], ["--dist", "load"]]
)
def test_a_command_line_that_chooses_its_own_workers_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, chosen: list[str]
) -> None:
    dev = _dev()
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 2)
    assert dev.parallel_args(["tests/unit", *chosen]) == []
