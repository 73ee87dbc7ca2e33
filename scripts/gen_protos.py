"""Regenerate the gRPC stubs under protos/paygate from the .proto files beside them.

`--check` regenerates into a temporary folder and fails when the committed stubs differ, so CI catches stale code.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


def _protos() -> list[Path]:
    return sorted(PROTO_ROOT.glob("paygate/**/*.proto"))


def generate(out_dir: Path) -> None:
    include = str(resources.files("grpc_tools") / "_proto")
    for proto in _protos():
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            str(proto.relative_to(PROTO_ROOT)),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")
    for folder in {p.parent for p in out_dir.glob("paygate/**/*.py")} | {out_dir / "paygate"}:
        while folder != out_dir:
            (folder / "__init__.py").touch()
            folder = folder.parent


def _generated(base: Path) -> dict[str, Path]:
    return {
        str(p.relative_to(base)): p
        for p in base.glob("paygate/**/*")
        if p.name.endswith(GENERATED_SUFFIXES) or p.name == "__init__.py"
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh, committed = _generated(out), _generated(PROTO_ROOT)
        if check:
            stale = sorted(
                name
                for name in fresh.keys() | committed.keys()
                if name not in fresh
                or name not in committed
                or not filecmp.cmp(fresh[name], committed[name], False)
            )
            if stale:
                print("generated gRPC code is stale; run: python scripts/gen_protos.py", *stale, sep="\n  ")
                return 1
            print(f"generated gRPC code is up to date ({len(fresh)} files)")
            return 0
        for name, path in fresh.items():
            target = PROTO_ROOT / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        for name in committed.keys() - fresh.keys():
            (PROTO_ROOT / name).unlink()
    print(f"generated {len(fresh)} files under protos/paygate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
