"""`python3 scripts/dev.py test` on a fresh machine installs kubectl (kustomize 5) for the deploy tests, as it
installs chromium for the browser tests: with apt, as root, when kubectl is missing or too old; and says so
when it cannot. Played with stand-in `kubectl` and `apt-get` programs on PATH, so nothing is installed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from support.dev_script import load_dev_script


def _program(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _kubectl(folder: Path, kustomize: str) -> None:
    _program(folder / "kubectl", f'echo \'{{"kustomizeVersion": "{kustomize}"}}\'\n')


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    # Only the stand-ins and the shell they run in: no real kubectl or apt-get.
    for tool in ("sh", "echo", "cat", "chmod"):
        os.symlink(f"/bin/{tool}", folder / tool)
    monkeypatch.setenv("PATH", str(folder))
    return folder


def _apt_that_installs(bin_dir: Path, log: Path) -> None:
    """apt-get: logs its arguments; `install ... kubectl` puts a kubectl with kustomize 5 on PATH."""
    _program(
        bin_dir / "apt-get",
        f'echo "$*" >> {log}\n'
        'case "$*" in *install*kubectl*) '
        f'printf \'#!/bin/sh\\necho {{\\"kustomizeVersion\\": \\"v5.5.0\\"}}\\n\' > {bin_dir}/kubectl; '
        f"chmod +x {bin_dir}/kubectl;; esac\n",
    )


def test_missing_kubectl_is_installed_with_apt_as_root(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = load_dev_script()
    log = tmp_path / "apt.log"
    _apt_that_installs(bin_dir, log)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    dev.ensure_kubectl()
    calls = log.read_text().splitlines()
    assert any(
        call.startswith("install") and call.split()[-1] == "kubectl" and "-y" in call for call in calls
    )
    assert dev._kustomize_major(str(bin_dir / "kubectl")) == 5
    assert "installing kubectl" in capsys.readouterr().out


def test_kubectl_with_old_kustomize_is_replaced(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = load_dev_script()
    _kubectl(bin_dir, "v2.0.3")  # Debian 12's kubernetes-client 1.20: cannot render deploy/
    log = tmp_path / "apt.log"
    _apt_that_installs(bin_dir, log)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    dev.ensure_kubectl()
    assert "install" in log.read_text()
    assert dev._kustomize_major(str(bin_dir / "kubectl")) == 5


def test_a_good_kubectl_is_left_alone(bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = load_dev_script()
    _kubectl(bin_dir, "v5.4.2")
    log = tmp_path / "apt.log"
    _apt_that_installs(bin_dir, log)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    dev.ensure_kubectl()
    assert not log.exists()


def test_says_so_when_it_cannot_install(
    bin_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = load_dev_script()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # not root (and no apt-get on PATH either)
    dev.ensure_kubectl()
    out = capsys.readouterr().out
    assert "kubectl is not on PATH" in out and "tests/deploy will fail" in out
