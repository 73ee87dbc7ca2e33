"""Pin a release overlay's container images by digest, and the release gate that checks it.

    python scripts/pin_images.py [--overlay prod] NAME=REPO[:TAG]@sha256:<64 hex> ...
    crane digest REPO:TAG | python scripts/pin_images.py [--overlay prod] NAME=REPO[:TAG] --digest-from -
    python scripts/pin_images.py --check [OVERLAY ...]

NAME is the image as the manifests name it: `paygate` (every paygate container, Deployments and migration
Jobs) or `ghcr.io/cloudnative-pg/postgresql` (the CloudNativePG Cluster's `imageName`). Each NAME=REF becomes
a kustomize `images:` entry with `digest:` in the overlay's kustomization.yaml (other entries are kept). The
digest is what the registry holds for what you pushed: `docker buildx imagetools inspect REF`, `crane digest
REF` or the `containerimage.digest` of `docker buildx build --metadata-file`; `--digest-from FILE` (or `-`,
stdin) reads any of those outputs for a single NAME=REF without digest. A digest must be `sha256:` and 64
lower-case hex digits. After writing, the overlay is rendered and every pinned reference must appear in it:
a NAME that matches no image leaves the file as it was and fails.

`--check` is the release gate (CI of a release runs it before `kubectl apply -k`): it renders each overlay
(default: RELEASE_OVERLAYS) and fails when any container image, or the Cluster's `imageName`, lacks a digest.
The repository itself carries tags only, because no image is built or pushed from it, so the gate fails on it
until a release pins what it pushed. Overlays outside RELEASE_OVERLAYS (dev) may use tags.

Exit status: 0 done / every image pinned; 1 an image is not pinned or the pin failed; 2 bad arguments or no
kubectl.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_deploy

# The overlays a release deploys to production: every image they run must be pinned by digest.
RELEASE_OVERLAYS = ("prod", "external-db")
# The image the CloudNativePG Cluster runs; CNPG reads the PostgreSQL major version from its tag, so it keeps
# its tag next to the digest.
CNPG_KINDS = frozenset({"Cluster"})

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# A repository as the distribution reference grammar spells it: an optional registry host (with port), then
# lower-case path components.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*(?::[0-9]+)?|\[[0-9A-Fa-f:]+\](?::[0-9]+)?)"
REPOSITORY = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*")
TAG = re.compile(r"[\w][\w.-]{0,127}")
PINNED = re.compile(rf"[^@\s]+@{DIGEST.pattern}")

RELEASE_HINT = (
    "pin what the release pushed: python scripts/pin_images.py --overlay <overlay> "
    "paygate=<registry>/paygate:<version>@sha256:<digest> "
    "ghcr.io/cloudnative-pg/postgresql=ghcr.io/cloudnative-pg/postgresql:<tag>@sha256:<digest> "
    '(docs/deploy.md, "Release: pin the images by digest")'
)


class PinError(ValueError):
    """A reference, digest or overlay the pin cannot use; the message says which and why."""


class PinMismatchError(PinError):
    """The pinned overlay does not render a reference it was given: its NAME matches no image there."""


@dataclass(frozen=True)
class Pin:
    """One kustomize images entry: the image `name` in the manifests becomes `repository[:tag]@digest`."""

    name: str
    repository: str
    tag: str | None
    digest: str

    @property
    def reference(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.repository}{tag}@{self.digest}"

    def entry(self) -> dict[str, str]:
        entry = {"name": self.name}
        if self.repository != self.name:
            entry["newName"] = self.repository
        if self.tag:
            # Kept beside the digest for people and for CNPG; the runtime pulls by the digest only.
            entry["newTag"] = self.tag
        entry["digest"] = self.digest
        return entry


@dataclass(frozen=True)
class Unpinned:
    overlay: str
    obj: str
    field: str
    image: str
    reason: str

    def __str__(self) -> str:
        return f"{self.overlay}: {self.obj} {self.field}: {self.image} {self.reason}"


# --- references and digests -----------------------------------------------------------------------------


def check_digest(digest: str) -> str:
    if not DIGEST.fullmatch(digest):
        raise PinError(f"digest {digest!r} is not sha256: followed by 64 lower-case hex digits")
    return digest


def split_reference(ref: str) -> tuple[str, str | None, str | None]:
    """`repo[:tag][@digest]` -> (repository, tag, digest), each part checked."""
    rest, at, digest = ref.partition("@")
    repository, tag = rest, None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        repository, tag = rest[:colon], rest[colon + 1 :]
        if not TAG.fullmatch(tag):
            raise PinError(f"{ref!r}: tag {tag!r} is not a valid image tag")
    if not REPOSITORY.fullmatch(repository):
        raise PinError(f"{ref!r}: {repository!r} is not a valid image repository")
    if at:
        check_digest(digest)
    return repository, tag, digest if at else None


def parse_pin(argument: str, digest: str | None = None) -> Pin:
    """`NAME=REPO[:TAG]@sha256:<hex>`, or `NAME=REPO[:TAG]` with the digest given separately."""
    name, eq, ref = argument.partition("=")
    if not eq or not name or not ref:
        raise PinError(f"{argument!r}: expected NAME=REPOSITORY[:TAG]@sha256:<digest>")
    if not REPOSITORY.fullmatch(name):
        raise PinError(f"{argument!r}: {name!r} is not an image name")
    repository, tag, in_ref = split_reference(ref)
    if in_ref and digest and in_ref != digest:
        raise PinError(f"{argument!r}: the reference's digest differs from the one read ({digest})")
    found = in_ref or digest
    if found is None:
        raise PinError(f"{argument!r}: no digest (add @sha256:<digest>, or pass --digest-from)")
    return Pin(name, repository, tag, check_digest(found))


def digest_from_tool_output(text: str) -> str:
    """The manifest digest in what the release tooling printed about a pushed image.

    `crane digest`: the digest alone. `docker buildx imagetools inspect`: the top-level `Digest:` line (the
    index's digest, so the same reference serves every architecture; the per-platform lines are indented).
    JSON: `containerimage.digest` from `docker buildx build --metadata-file`, or `digest` from
    `imagetools inspect --format '{{json .Manifest}}'`.
    """
    stripped = text.strip()
    if not stripped:
        raise PinError("no digest: the tool output is empty")
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise PinError(f"tool output is not valid JSON: {exc}") from exc
        for key in ("containerimage.digest", "digest"):
            value = data.get(key) if isinstance(data, dict) else None
            if isinstance(value, str):
                return check_digest(value)
        raise PinError("JSON tool output has no containerimage.digest or digest")
    if "\n" not in stripped and not stripped.startswith("Digest:"):
        return check_digest(stripped)
    found = re.findall(r"^Digest:[ \t]*(\S+)[ \t]*$", text, flags=re.MULTILINE)
    if len(found) != 1:
        raise PinError(f"expected one top-level `Digest:` line in the imagetools output, found {len(found)}")
    return check_digest(found[0])


# --- the overlay --------------------------------------------------------------------------------------


def overlay_dir(overlay: str) -> Path:
    """An overlay name under deploy/overlays, or a directory holding a kustomization.yaml."""
    path = Path(overlay)
    if not (path / "kustomization.yaml").is_file():
        path = check_deploy.OVERLAYS_DIR / overlay
    if not (path / "kustomization.yaml").is_file():
        raise PinError(f"{overlay!r}: no such overlay (no kustomization.yaml)")
    return path


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(  # fixed argv, no shell
        [check_deploy.find_kubectl(), "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise check_deploy.KustomizeBuildError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _scalar(value: str) -> str:
    """A YAML scalar that reads back as this very string (a tag like 17.5 would read back as a float)."""
    return value if yaml.safe_load(value) == value else json.dumps(value)


def images_block(entries: Iterable[dict[str, str]]) -> list[str]:
    lines = ["images:"]
    for entry in entries:
        for i, (key, value) in enumerate(entry.items()):
            lines.append(f"{'  - ' if i == 0 else '    '}{key}: {_scalar(str(value))}")
    return lines


def with_images(text: str, pins: Iterable[Pin]) -> str:
    """The kustomization text with its top-level `images:` set to hold `pins`: other entries, other keys and
    every comment outside that block stay as they are."""
    doc = yaml.safe_load(text) or {}
    entries: list[dict[str, str]] = [dict(e) for e in doc.get("images") or []]
    for pin in pins:
        for i, entry in enumerate(entries):
            if entry.get("name") == pin.name:
                entries[i] = pin.entry()
                break
        else:
            entries.append(pin.entry())
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"images:\s*(#.*)?$", line)), None)
    if start is None:
        new_lines = [*lines, *images_block(entries)]
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if re.match(r"[^\s#-]", lines[i])),
            len(lines),
        )
        # Comment and blank lines just before the next key belong to that key.
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1
        new_lines = [*lines[:start], *images_block(entries), *lines[end:]]
    new_text = "\n".join(new_lines) + "\n"
    expected = {**doc, "images": entries}
    if yaml.safe_load(new_text) != expected:  # never write a kustomization that says something else
        raise PinError("could not rewrite the images block without touching the rest of the file")
    return new_text


def pin_overlay(overlay: str, pins: list[Pin]) -> list[str]:
    """Write `pins` into the overlay and return the references it now renders; nothing changes on failure."""
    path = overlay_dir(overlay)
    kustomization = path / "kustomization.yaml"
    before = kustomization.read_text()
    kustomization.write_text(with_images(before, pins))
    try:
        rendered = set(image for _, _, image in images_of(render(path)))
        missing = [pin for pin in pins if pin.reference not in rendered]
        if missing:
            names = ", ".join(pin.name for pin in missing)
            raise PinMismatchError(
                f"{overlay}: {names} matches no image the overlay renders (it renders: {', '.join(sorted(rendered))})"
            )
    except BaseException:
        kustomization.write_text(before)
        raise
    return sorted(rendered)


# --- the release gate ---------------------------------------------------------------------------------------


def _containers(node: Any, where: str) -> Iterator[tuple[str, str]]:
    """(field, image) of every container anywhere in an object: pod templates, CronJobs, Poolers, ..."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"containers", "initContainers", "ephemeralContainers"} and isinstance(value, list):
                for c in value:
                    if isinstance(c, dict) and isinstance(c.get("image"), str):
                        yield f"{where}.{key}[{c.get('name')}].image", c["image"]
            yield from _containers(value, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _containers(item, f"{where}[{i}]")


def images_of(objs: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], str, str]]:
    """(object, field, image) for every image an object makes the cluster run."""
    for obj in objs:
        for field, image in _containers(obj.get("spec"), "spec"):
            yield obj, field, image
        spec = obj.get("spec") or {}
        if obj.get("kind") in CNPG_KINDS and isinstance(spec.get("imageName"), str):
            yield obj, "spec.imageName", spec["imageName"]
        if obj.get("kind") in {"ImageCatalog", "ClusterImageCatalog"}:
            for i, entry in enumerate(spec.get("images") or []):
                yield obj, f"spec.images[{i}].image", entry.get("image", "")


def unpinned(objs: Iterable[dict[str, Any]], overlay: str) -> list[Unpinned]:
    findings: list[Unpinned] = []
    for obj, field, image in images_of(objs):
        name = check_deploy.object_name(obj)
        if not PINNED.fullmatch(image):
            reason = "has a tag but no digest" if "@" not in image else "has a malformed digest"
            findings.append(Unpinned(overlay, name, field, image, reason))
        elif field == "spec.imageName" and obj.get("kind") in CNPG_KINDS:
            _, tag, _ = split_reference(image)
            if not tag:
                findings.append(
                    Unpinned(
                        overlay, name, field, image, "needs its tag too: CNPG reads the major version there"
                    )
                )
    return findings


def check(overlays: Iterable[str]) -> list[Unpinned]:
    findings: list[Unpinned] = []
    for overlay in overlays:
        findings += unpinned(render(overlay_dir(overlay)), overlay)
    return findings


# --- command line -------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="pin_images.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="the release gate: fail on any unpinned image")
    parser.add_argument("--overlay", default="prod", help="the overlay to pin (a name or a directory)")
    parser.add_argument(
        "--digest-from", metavar="FILE", help="read the digest for one NAME=REF from FILE or -"
    )
    parser.add_argument("args", nargs="*", help="NAME=REF pins; with --check, the overlays to check")
    ns = parser.parse_args(argv)
    try:
        if ns.check:
            findings = check(ns.args or RELEASE_OVERLAYS)
            for finding in findings:
                print(f"FAIL {finding}")
            if findings:
                print(f"release gate: {len(findings)} image(s) not pinned by digest; {RELEASE_HINT}")
                return 1
            print(f"ok {', '.join(ns.args or RELEASE_OVERLAYS)}: every image pinned by digest")
            return 0
        if not ns.args:
            parser.error("give NAME=REF pins, or --check")
        digest = None
        if ns.digest_from:
            if len(ns.args) != 1:
                parser.error("--digest-from gives the digest of exactly one NAME=REF")
            source = sys.stdin.read() if ns.digest_from == "-" else Path(ns.digest_from).read_text()
            digest = digest_from_tool_output(source)
        pins = [parse_pin(arg, digest) for arg in ns.args]
        if len({pin.name for pin in pins}) != len(pins):
            raise PinError("an image name is given twice")
        rendered = pin_overlay(ns.overlay, pins)
    except (PinMismatchError, check_deploy.KustomizeBuildError) as exc:
        print(f"pin_images: {exc}", file=sys.stderr)
        return 1
    except (PinError, check_deploy.KubectlMissingError, OSError) as exc:
        print(f"pin_images: {exc}", file=sys.stderr)
        return 2
    for pin in pins:
        print(f"pinned {pin.name} -> {pin.reference} in {ns.overlay}")
    print(f"{ns.overlay} renders: {', '.join(rendered)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
