"""The import contracts of pyproject.toml ([tool.importlinter], issue 15): a domain does no I/O and imports no
other layer, each service is a column of layers, no service imports another, the runtime and the protos import
no service, product code imports no dev or test code. `.ci/run` runs `lint-imports` too."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

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


def test_every_gateway_route_module_is_in_the_independence_contract() -> None:
    """import-linter takes no `routes_*` wildcard: a new route module must be added to the list by hand."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "gateway-routes-independent"]
    on_disk = {
        f"webhook_gateway.entrypoints.{path.stem}"
        for path in (ROOT / "webhook_gateway" / "entrypoints").glob("routes_*.py")
    }
    assert set(contract["modules"]) == on_disk


def test_the_contracts_catch_the_runtime_reaching_into_a_service(tmp_path: Path) -> None:
    """The circle issue 15 found: the runtime's dev CLI imported the gateway's chain bootstrap, which imported
    the session service's domain. Rebuilt in a scratch tree, with this project's contracts, it breaks both
    the "runtime on the ground floor" and the "services independent" contracts."""
    config = _scratch_tree(tmp_path)
    _module(tmp_path, "session_service.domain.deposit_addresses")
    _module(
        tmp_path, "webhook_gateway.chain.chain_up", "from session_service.domain import deposit_addresses\n"
    )
    _module(tmp_path, "paygate_runtime.cli.extras", "from webhook_gateway.chain import chain_up\n")

    result = lint_imports(tmp_path, pythonpath=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = {c["id"] for c in config["contracts"] if _status(result.stdout, c["name"]) == "BROKEN"}
    assert broken == {"runtime-ground-floor", "services-independent"}, result.stdout


def test_the_contracts_catch_the_circles_inside_paygate_dev_and_the_session_entrypoints(
    tmp_path: Path,
) -> None:
    """The two circles left after the dev tools moved out (issue 15): `up` imported its hooks while the hooks
    named `Stack`/`StackPlan` from `up` under TYPE_CHECKING; the session servicer named `SessionConfig` from
    `main` (which builds the servicer) and the refund RPC adapter named the servicer."""
    config = _scratch_tree(tmp_path)
    _module(tmp_path, "paygate_dev.up", "from paygate_dev import extras\n")
    _module(tmp_path, "paygate_dev.extras", "from paygate_dev.chain import chain_up\n")
    _module(
        tmp_path,
        "paygate_dev.chain.chain_up",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from paygate_dev.up import Stack\n",
    )
    _module(
        tmp_path,
        "session_service.entrypoints.main",
        "from session_service.entrypoints import grpc_servicer\n",
    )
    _module(
        tmp_path,
        "session_service.entrypoints.grpc_servicer",
        "from session_service.entrypoints import refund_rpcs\n"
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from session_service.entrypoints import main\n",
    )
    _module(
        tmp_path,
        "session_service.entrypoints.refund_rpcs",
        "from session_service.entrypoints import grpc_servicer\n",
    )

    result = lint_imports(tmp_path, pythonpath=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    broken = {c["id"] for c in config["contracts"] if _status(result.stdout, c["name"]) == "BROKEN"}
    assert broken == {"dev-stack-layers", "session-entrypoints-layers"}, result.stdout


def _scratch_tree(root: Path) -> dict[str, Any]:
    """An empty tree under `root` holding every module the contracts name, with this project's
    pyproject.toml: every module a contract names, and every import it lets through by name, must exist, or
    lint-imports refuses the configuration. Returns the [tool.importlinter] table."""
    config: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    for package in config["root_packages"]:
        _module(root, package)
    for contract in config["contracts"]:
        named = [*contract.get("source_modules", []), *contract.get("forbidden_modules", [])]
        named += [*contract.get("modules", [])]
        # A layer may hold siblings: "a | b" (independent) or "a : b"; "(a)" marks an optional one.
        layers = [
            name.strip(" ()") for layer in contract.get("layers", []) for name in re.split(r"[|:]", layer)
        ]
        named += [f"{c}.{layer}" for c in contract.get("containers", []) for layer in layers]
        for module in named:
            if module.split(".")[0] in config["root_packages"]:
                _module(root, module)
        for ignored in contract.get("ignore_imports", []):
            importer, imported = (part.strip() for part in ignored.split("->"))
            if imported.split(".")[0] in config["root_packages"]:
                _module(root, imported)
            _module(root, importer, f"import {imported}\n")
    (root / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    return config


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
