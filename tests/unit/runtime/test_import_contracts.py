"""The import contracts of pyproject.toml ([tool.importlinter], issue 15): a domain does no I/O and imports no
other layer, each service is a column of layers, no service imports another, the runtime and the protos import
no service, product code imports no dev or test code. `.ci/run` runs `lint-imports` too."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, *, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, f"import contracts broken:\n{result.stdout}{result.stderr}"
    assert "BROKEN" not in result.stdout


def test_the_contracts_catch_the_runtime_reaching_into_a_service(tmp_path: Path) -> None:
    """The circle issue 15 found: the runtime's dev CLI imported the gateway's chain bootstrap, which imported
    the session service's domain. Rebuilt in a scratch tree, with this project's contracts, it breaks both
    the "runtime on the ground floor" and the "services independent" contracts."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        _module(tmp_path, package)
    # Every module a contract names, and every import it lets through by name, must exist, or lint-imports
    # refuses the configuration.
    for contract in config["contracts"]:
        named = [*contract.get("source_modules", []), *contract.get("forbidden_modules", [])]
        named += [
            f"{c}.{layer}" for c in contract.get("containers", []) for layer in contract.get("layers", [])
        ]
        for module in named:
            if module.split(".")[0] in config["root_packages"]:
                _module(tmp_path, module)
        for ignored in contract.get("ignore_imports", []):
            importer, imported = (part.strip() for part in ignored.split("->"))
            if imported.split(".")[0] in config["root_packages"]:
                _module(tmp_path, imported)
            _module(tmp_path, importer, f"import {imported}\n")
    _module(tmp_path, "session_service.domain.deposit_addresses")
    _module(
        tmp_path, "webhook_gateway.chain.chain_up", "from session_service.domain import deposit_addresses\n"
    )
    _module(tmp_path, "paygate_runtime.cli.extras", "from webhook_gateway.chain import chain_up\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())

    result = lint_imports(tmp_path, pythonpath=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = {c["name"] for c in config["contracts"] if _status(result.stdout, c["name"]) == "BROKEN"}
    assert broken == {
        "The shared runtime and the generated protos import no service",
        "No service imports another service (they talk over gRPC; shared code lives in paygate_runtime)",
    }, result.stdout


def _module(root: Path, dotted: str, source: str = "") -> None:
    """Write module `dotted` under `root` as a package (so a later submodule fits), with its parents,
    appending `source` to what an earlier call wrote."""
    path = root.joinpath(*dotted.split("."), "__init__.py")
    for parent in reversed(path.parents[1 : len(dotted.split("."))]):
        if not (parent / "__init__.py").exists():
            parent.mkdir(parents=True, exist_ok=True)
            (parent / "__init__.py").write_text("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((path.read_text() if path.exists() else "") + source)


def _status(output: str, name: str) -> str | None:
    """KEPT or BROKEN for the contract `name` in lint-imports' summary (which wraps long names)."""
    flat = re.sub(r"\s+", " ", output)
    match = re.search(re.escape(name) + r" (KEPT|BROKEN)", flat)
    return match.group(1) if match else None
