"""Images pinned by digest in the release overlays (issue 14, item 7), and the release gate that checks it.

No image is built or pushed from this repository, so its release overlays carry tags; the gate
(`scripts/pin_images.py --check`, which a release's CI runs before `kubectl apply -k`) fails on them until a
release pins what it pushed with `scripts/pin_images.py`. These tests pin a copy of deploy/ with fake but
well-formed digests and render it with kubectl kustomize, as the release would.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy
import pin_images

SCRIPTS = check_deploy.REPO_ROOT / "scripts"

APP_DIGEST = "sha256:" + "0123456789abcdef" * 4
NEXT_DIGEST = "sha256:" + "fedcba9876543210" * 4
PG_DIGEST = "sha256:" + "a1" * 32
APP_PIN = f"paygate=registry.example.com/paygate:0.2.0@{APP_DIGEST}"
PG_PIN = f"ghcr.io/cloudnative-pg/postgresql=ghcr.io/cloudnative-pg/postgresql:17.5@{PG_DIGEST}"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "pin_images.py"), *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
        check=False,
    )


def render(overlay: Path | str) -> list[dict[str, Any]]:
    try:
        return pin_images.render(pin_images.overlay_dir(str(overlay)))
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


def rendered_images(overlay: Path | str) -> dict[str, str]:
    """`Kind/name field` -> image, for every image the overlay makes the cluster run."""
    return {
        f"{check_deploy.object_name(obj)} {field}": image
        for obj, field, image in pin_images.images_of(render(overlay))
    }


@pytest.fixture
def deploy_copy(tmp_path: Path) -> Path:
    """A copy of deploy/ (the overlays refer to ../../base and ../../components), to pin without touching ours."""
    copy = tmp_path / "deploy"
    shutil.copytree(check_deploy.DEPLOY_DIR, copy)
    return copy


def test_the_gate_fails_on_a_tag_only_prod_and_passes_once_pinned(deploy_copy: Path) -> None:
    prod = deploy_copy / "overlays" / "prod"
    before = rendered_images(prod)
    # Every paygate container (the four Deployments and the four migration Jobs) and the CNPG operand.
    assert sum("paygate" in image and "postgresql" not in image for image in before.values()) == 8
    assert before["Cluster/paygate-db spec.imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:")

    gate = run("--check", str(prod))
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert gate.stdout.count("has a tag but no digest") == len(before) == 9
    assert "scripts/pin_images.py --overlay" in gate.stdout  # says how to pass

    pinned = run("--overlay", str(prod), APP_PIN, PG_PIN)
    assert pinned.returncode == 0, pinned.stdout + pinned.stderr
    after = rendered_images(prod)
    assert after.keys() == before.keys()
    for where, image in after.items():
        expected = PG_PIN.split("=")[1] if "postgresql" in before[where] else APP_PIN.split("=")[1]
        assert image == expected, where
    gate = run("--check", str(prod))
    assert gate.returncode == 0, gate.stdout + gate.stderr

    # The rest of the overlay is untouched: its comments and its release label.
    text = (prod / "kustomization.yaml").read_text()
    assert "# The release this overlay deploys" in text
    assert 'paygate.dev/release: "0-1-0"' in text
    # The next release replaces the entry (no stale tag left beside the new digest), one entry per image.
    again = run("--overlay", str(prod), f"paygate=registry.example.com/paygate@{NEXT_DIGEST}")
    assert again.returncode == 0, again.stdout + again.stderr
    entries = yaml.safe_load((prod / "kustomization.yaml").read_text())["images"]
    assert [e["name"] for e in entries] == ["paygate", "ghcr.io/cloudnative-pg/postgresql"]
    assert entries[0] == {"name": "paygate", "newName": "registry.example.com/paygate", "digest": NEXT_DIGEST}
    assert entries[1]["newTag"] == "17.5"  # a string: CNPG reads the major version from it
    assert set(rendered_images(prod).values()) == {
        f"registry.example.com/paygate@{NEXT_DIGEST}",
        PG_PIN.split("=")[1],
    }


@pytest.mark.parametrize("overlay", pin_images.RELEASE_OVERLAYS)
def test_the_release_overlays_are_pinned_or_fail_the_gate(overlay: str) -> None:
    """As committed, either every image is pinned by digest or the documented gate fails naming each other."""
    images = rendered_images(overlay)
    assert images, f"{overlay} renders no image"
    unpinned = {where: image for where, image in images.items() if not pin_images.PINNED.fullmatch(image)}
    gate = run("--check", overlay)
    assert gate.returncode == (1 if unpinned else 0), gate.stdout + gate.stderr
    for where, image in unpinned.items():
        assert f"{overlay}: {where}: {image}" in gate.stdout


def test_dev_may_use_tags_and_every_other_overlay_is_a_release_overlay() -> None:
    """A new overlay (staging, a second region) must be placed on one side on purpose."""
    assert set(check_deploy.overlay_names()) == {"dev", *pin_images.RELEASE_OVERLAYS}
    assert "dev" not in pin_images.RELEASE_OVERLAYS
    assert any(not pin_images.PINNED.fullmatch(image) for image in rendered_images("dev").values())
    # The gate with no arguments checks exactly the release overlays.
    out = run("--check").stdout
    assert {
        line.split()[1].rstrip(":") for line in out.splitlines() if line.startswith(("FAIL", "ok"))
    } <= set(pin_images.RELEASE_OVERLAYS)


@pytest.mark.parametrize(
    "argument",
    [
        "paygate=registry.example.com/paygate:0.2.0",  # a tag only
        "paygate=registry.example.com/paygate@sha256:" + "0" * 63,  # short
        "paygate=registry.example.com/paygate@sha256:" + "A" * 64,  # upper-case hex
        "paygate=registry.example.com/paygate@sha512:" + "0" * 128,  # another algorithm
        "paygate=registry.example.com/paygate@" + "0" * 64,  # no algorithm
        "paygate=Registry.Example.com/PayGate@" + APP_DIGEST,  # upper-case repository
        "paygate=registry.example.com/paygate:bad/tag@" + APP_DIGEST,
        "paygate@" + APP_DIGEST,  # no NAME=
        "=registry.example.com/paygate@" + APP_DIGEST,
    ],
)
def test_a_malformed_reference_or_digest_is_refused_and_nothing_is_written(
    deploy_copy: Path, argument: str
) -> None:
    kustomization = deploy_copy / "overlays" / "prod" / "kustomization.yaml"
    before = kustomization.read_text()
    result = run("--overlay", str(kustomization.parent), argument)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("pin_images: ")
    assert kustomization.read_text() == before


def test_a_name_that_matches_no_image_fails_and_leaves_the_overlay_as_it_was(deploy_copy: Path) -> None:
    kustomization = deploy_copy / "overlays" / "prod" / "kustomization.yaml"
    before = kustomization.read_text()
    result = run("--overlay", str(kustomization.parent), f"paygtae=registry.example.com/paygate@{APP_DIGEST}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "paygtae matches no image the overlay renders" in result.stderr
    assert kustomization.read_text() == before


IMAGETOOLS = f"""Name:      registry.example.com/paygate:0.2.0
MediaType: application/vnd.oci.image.index.v1+json
Digest:    {APP_DIGEST}

Manifests:
  Name:        registry.example.com/paygate:0.2.0@{NEXT_DIGEST}
  MediaType:   application/vnd.oci.image.manifest.v1+json
  Platform:    linux/amd64
"""


@pytest.mark.parametrize(
    "output",
    [
        f"{APP_DIGEST}\n",  # crane digest
        IMAGETOOLS,  # docker buildx imagetools inspect: the index digest, not a platform's
        f'{{"containerimage.digest": "{APP_DIGEST}", "image.name": "registry.example.com/paygate:0.2.0"}}',
        f'{{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "{APP_DIGEST}", "size": 856}}',
    ],
)
def test_the_digest_is_read_from_what_the_release_tools_print(output: str) -> None:
    assert pin_images.digest_from_tool_output(output) == APP_DIGEST


@pytest.mark.parametrize("output", ["", "latest\n", "Digest: sha256:abc\n", '{"digest": 3}', IMAGETOOLS * 2])
def test_tool_output_without_one_good_digest_is_refused(output: str) -> None:
    with pytest.raises(pin_images.PinError):
        pin_images.digest_from_tool_output(output)


def test_digest_from_stdin_pins_the_overlay(deploy_copy: Path) -> None:
    prod = deploy_copy / "overlays" / "prod"
    result = run(
        "--overlay",
        str(prod),
        "paygate=registry.example.com/paygate:0.2.0",
        "--digest-from",
        "-",
        stdin=IMAGETOOLS,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    images = set(rendered_images(prod).values())
    assert f"registry.example.com/paygate:0.2.0@{APP_DIGEST}" in images


def test_the_cnpg_image_keeps_its_tag_beside_the_digest() -> None:
    def cluster(image: str) -> dict[str, Any]:
        return {
            "apiVersion": "postgresql.cnpg.io/v1",
            "kind": "Cluster",
            "metadata": {"name": "db"},
            "spec": {"imageName": image},
        }

    repo = "ghcr.io/cloudnative-pg/postgresql"
    assert pin_images.unpinned([cluster(f"{repo}:17.5@{PG_DIGEST}")], "x") == []
    (finding,) = pin_images.unpinned([cluster(f"{repo}@{PG_DIGEST}")], "x")
    assert "major version" in finding.reason
    (finding,) = pin_images.unpinned([cluster(f"{repo}:17.5")], "x")
    assert finding.reason == "has a tag but no digest"


def test_the_gate_finds_images_in_every_kind_of_pod_template() -> None:
    pod = {"containers": [{"name": "a", "image": "x:1"}], "initContainers": [{"name": "i", "image": "y:1"}]}
    cronjob = {
        "kind": "CronJob",
        "metadata": {"name": "c"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod}}}},
    }
    found = {(f.field, f.image) for f in pin_images.unpinned([cronjob], "x")}
    assert found == {
        ("spec.jobTemplate.spec.template.spec.containers[a].image", "x:1"),
        ("spec.jobTemplate.spec.template.spec.initContainers[i].image", "y:1"),
    }


def test_the_checkov_digest_skip_points_at_the_release_gate() -> None:
    for overlay in check_deploy.overlay_names():
        for obj in render(overlay):
            for value in (obj.get("metadata", {}).get("annotations") or {}).values():
                if str(value).startswith("CKV_K8S_43="):
                    assert "scripts/pin_images.py --check" in value, check_deploy.object_name(obj)
