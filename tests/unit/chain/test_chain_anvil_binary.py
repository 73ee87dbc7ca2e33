from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from paygate_dev.chain.anvil import ANVIL_BIN_ENV, AnvilError, find_anvil_binary, start_anvil


def test_env_override_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "anvil"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    monkeypatch.setenv(ANVIL_BIN_ENV, str(fake))
    assert find_anvil_binary() == fake


def test_env_override_must_be_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_exec = tmp_path / "anvil"
    not_exec.write_text("")
    monkeypatch.setenv(ANVIL_BIN_ENV, str(not_exec))
    with pytest.raises(AnvilError, match=ANVIL_BIN_ENV):
        find_anvil_binary()


def test_missing_node_modules_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ANVIL_BIN_ENV, raising=False)
    with pytest.raises(AnvilError, match="npm ci"):
        find_anvil_binary(tmp_path)


def test_prefers_native_platform_binary_over_node_wrapper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ANVIL_BIN_ENV, raising=False)
    wrapper = tmp_path / "node_modules" / ".bin" / "anvil"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text("#!/bin/sh\n")
    wrapper.chmod(0o755)
    assert find_anvil_binary(tmp_path) == wrapper

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    native = tmp_path / "node_modules" / "@foundry-rs" / f"anvil-{sys.platform}-{arch}" / "bin" / "anvil"
    native.parent.mkdir(parents=True)
    native.write_text("#!/bin/sh\n")
    native.chmod(0o755)
    assert find_anvil_binary(tmp_path) == native


async def test_binary_that_exits_at_once_is_reported_with_its_output(tmp_path: Path) -> None:
    broken = tmp_path / "anvil"
    broken.write_text("#!/bin/sh\necho 'error: address already in use'\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(AnvilError) as err:
        await start_anvil(binary=broken, startup_timeout=5)
    assert "address already in use" in str(err.value)
