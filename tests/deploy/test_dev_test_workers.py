"""`python3 scripts/dev.py test` (README's test command, and CI's) runs the suite with one pytest-xdist worker per
core, at most four, files kept whole on one worker; a command line that chooses its own (`-n 0`, `-p no:xdist`)
is left alone. A single process spent half of a 2-core CI machine's 15 to 21 minutes waiting."""

from __future__ import annotations

import pytest

from support.dev_script import load_dev_script


@pytest.mark.parametrize(("cores", "expected"), [(2, "2"), (8, "4"), (None, None), (1, None)])
def test_the_suite_runs_one_worker_per_core(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, expected: str | None
) -> None:
    dev = load_dev_script()
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
    dev = load_dev_script()
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 2)
    assert dev.parallel_args(["tests/unit", *chosen]) == []
