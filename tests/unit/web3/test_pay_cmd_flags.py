"""`paygate pay`'s flags as README's command table names them: a count of blocks to mine is never negative."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from paygate_runtime.cli.main import main


def test_a_negative_mine_is_refused_before_anything_is_paid(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A walk of README's table: `pay --mine -1` paid the session and mined 0 blocks, as if -1 meant 0."""
    monkeypatch.setenv("PAYGATE_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as refused:
        main(["pay", "--session", str(uuid.uuid4()), "--mine", "-1"])
    assert refused.value.code == 2
    assert "argument --mine: must be a whole number of blocks, 0 or more" in capsys.readouterr().err
