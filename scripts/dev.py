#!/usr/bin/env python3
"""One entry point for a fresh machine with Python 3.11+ (and Node.js for the chain node).

    python3 scripts/dev.py up [paygate up flags]   set everything up, then run the whole system
    python3 scripts/dev.py test [pytest args]       set everything up, then run the whole test suite, one
                                                    pytest-xdist worker per core (at most 4; `-n 0`: one process)

Setup is idempotent and skipped when nothing changed: a virtual environment in .venv installed from
requirements.lock, the project itself (editable), checkov in .venv/tools/checkov from requirements-checkov.lock
(its pins conflict with ours), the Node packages from package-lock.json (anvil, solc), and for the tests
Debian's chromium and kubectl (kustomize 5, for tests/deploy) when missing and we may install them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".paygate-installed"


def _say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes() if path.exists() else b"-")
    return h.hexdigest()


def ensure_python_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs before the venv exists
        raise SystemExit("paygate needs Python 3.11 or newer")
    if not PYTHON.exists():
        _say("creating .venv")
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    wanted = _digest(ROOT / "requirements.lock", ROOT / "pyproject.toml")
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    _say("installing Python packages from requirements.lock")
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.write_text(wanted)


def ensure_checkov() -> None:
    """checkov, for the manifest test, in its own environment under .venv/tools: its pins conflict with ours."""
    lock = ROOT / "requirements-checkov.lock"
    if not lock.exists():
        return
    env_dir = VENV / "tools" / "checkov"
    stamp = env_dir / ".paygate-installed"
    wanted = _digest(lock)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    _say("installing checkov into .venv/tools/checkov from requirements-checkov.lock")
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    pip = [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(lock)], check=True)
    stamp.write_text(wanted)


def ensure_node_packages(required: bool) -> None:
    lock = ROOT / "package-lock.json"
    if not lock.exists():
        return
    stamp = ROOT / "node_modules" / ".paygate-installed"
    wanted = _digest(lock)
    if stamp.exists() and stamp.read_text() == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        message = "npm not found: install Node.js 20+ for the local chain node (anvil)"
        if required:
            raise SystemExit(message)
        _say(message + "; continuing without it")
        return
    _say("installing Node packages from package-lock.json")
    subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ROOT, check=True
    )
    stamp.write_text(wanted)


def ensure_chromium() -> None:
    if shutil.which("chromium") or os.environ.get("PAYGATE_CHROMIUM"):
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        _say("installing Debian's chromium for the browser tests")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [apt, "install", "-y", "-qq", "chromium"], check=True, env=env, stdout=subprocess.DEVNULL
        )
    else:
        _say("chromium not found and cannot be installed here; browser tests will say so")


def _kustomize_major(kubectl: str) -> int:
    """The major version of the kustomize built into `kubectl` (0 when it cannot be told)."""
    try:
        result = subprocess.run(
            [kubectl, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60
        )
        version = json.loads(result.stdout).get("kustomizeVersion", "")
        return int(version.lstrip("v").split(".")[0])
    except (OSError, subprocess.SubprocessError, ValueError, AttributeError):
        return 0


def ensure_kubectl() -> None:
    """The deploy tests render deploy/ with `kubectl kustomize`, which needs kustomize 5 (kubectl 1.27+):
    components, `labels` and replacements. Installed with apt as root when missing or too old."""
    kubectl = shutil.which("kubectl")
    if kubectl and _kustomize_major(kubectl) >= 5:
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        _say("installing kubectl for the deploy tests")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=False, env=env, stdout=subprocess.DEVNULL)
        # `kubectl` is the package name in the Kubernetes project's apt repository (and Debian 13+); Debian 12
        # only has `kubernetes-client` 1.20, whose kustomize 2 cannot render deploy/, so it is not a fallback.
        subprocess.run(
            [apt, "install", "-y", "-qq", "kubectl"], check=False, env=env, stdout=subprocess.DEVNULL
        )
        kubectl = shutil.which("kubectl")
        if kubectl and _kustomize_major(kubectl) >= 5:
            return
    found = f"{kubectl} has kustomize < 5" if kubectl else "kubectl is not on PATH"
    _say(
        f"{found} and no kubectl 1.27+ could be installed here (apt package `kubectl`); the tests in "
        "tests/deploy will fail saying so. Install kubectl 1.27 or newer (https://kubernetes.io/docs/tasks/tools/)"
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"up", "test", "setup"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_python_env()
    if command == "up":
        ensure_node_packages(required="--chain" in rest)
        os.execv(str(VENV / "bin" / "paygate"), [str(VENV / "bin" / "paygate"), "up", *rest])
    ensure_node_packages(required=True)
    ensure_checkov()
    if command == "setup":
        return 0
    ensure_chromium()
    ensure_kubectl()
    os.chdir(ROOT)
    return subprocess.run([str(PYTHON), "-m", "pytest", *parallel_args(rest), *rest]).returncode


# Workers beyond four gain little (the browser, chain and `paygate up` tests each start processes of their own)
# and cost a PostgreSQL each.
MAX_WORKERS = 4


def parallel_args(rest: list[str]) -> list[str]:
    """pytest-xdist's options for the suite on every core, unless `rest` chooses its own (`-n`, or `-p no:xdist`).
    Half of a single-process run's time is waiting (subprocess stacks, browsers, the chain node, timers), so one
    worker per core nearly halves it on 2 cores. `loadfile` keeps each file on one worker: module-scoped
    fixtures (a shared stack, a chain node) start once, and the kubelet test's fixed addresses stay in one
    process. Each worker starts its own throwaway PostgreSQL (tests/conftest.py's `database`)."""
    if any(a == "-n" or a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in rest):
        return []
    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
