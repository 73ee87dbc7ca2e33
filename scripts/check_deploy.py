"""Build every kustomize overlay under deploy/ and validate each object it renders.

Built-in kinds are validated with kubernetes-validate (strict: unknown fields are errors) against
each Kubernetes version in KUBERNETES_VERSIONS. Custom resources (CloudNativePG Cluster,
cert-manager Certificate) are validated with jsonschema against the openAPIV3Schema vendored in
deploy/schemas/. A custom resource with no vendored schema is an error, not a warning.

Usage: python scripts/check_deploy.py [overlay ...]     (default: every overlay)
Exit status 0 when everything validates, 1 on any error, 2 when kubectl is missing.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = REPO_ROOT / "deploy"
OVERLAYS_DIR = DEPLOY_DIR / "overlays"
SCHEMAS_DIR = DEPLOY_DIR / "schemas"
# 1.30 is the oldest release the manifests promise to work on; 1.32 matches the kubectl here.
KUBERNETES_VERSIONS = ("1.30", "1.32")
# API groups whose kinds kubernetes-validate ships schemas for (the built-in API).
_BUILTIN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "coordination.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
    }
)

Manifest = dict[str, Any]


class KubectlMissingError(RuntimeError):
    """kubectl is not on PATH; the check cannot build the overlays."""


class KustomizeBuildError(RuntimeError):
    """`kubectl kustomize` failed for an overlay."""


@dataclass(frozen=True)
class Finding:
    overlay: str
    obj: str
    message: str

    def __str__(self) -> str:
        return f"{self.overlay}: {self.obj}: {self.message}"


def overlay_names() -> list[str]:
    """Every overlay directory under deploy/overlays that has a kustomization.yaml."""
    return sorted(p.parent.name for p in OVERLAYS_DIR.glob("*/kustomization.yaml"))


def find_kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        raise KubectlMissingError(
            "kubectl not found on PATH: install kubectl >= 1.27 (kustomize 5); "
            "Debian's kubernetes-client 1.20 is too old for these overlays"
        )
    return path


def build_overlay(name: str) -> list[Manifest]:
    """Render deploy/overlays/<name> with `kubectl kustomize` and return its objects."""
    kubectl = find_kubectl()
    result = subprocess.run(  # fixed argv, no shell
        [kubectl, "kustomize", str(OVERLAYS_DIR / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise KustomizeBuildError(f"kubectl kustomize {name} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def object_name(obj: Manifest) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def api_group(obj: Manifest) -> str:
    api_version = obj.get("apiVersion", "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def is_builtin(obj: Manifest) -> bool:
    return api_group(obj) in _BUILTIN_GROUPS


def validate_builtin(objs: Iterable[Manifest], overlay: str) -> list[Finding]:
    """kubernetes-validate, strict, against every version in KUBERNETES_VERSIONS."""
    findings: list[Finding] = []
    for obj in objs:
        if not is_builtin(obj):
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                findings.append(Finding(overlay, object_name(obj), f"k8s {version}: {path}: {exc.message}"))
            except kubernetes_validate.SchemaNotFoundError as exc:
                findings.append(Finding(overlay, object_name(obj), f"k8s {version}: {exc.message}"))
    return findings


def _closed(schema: Any) -> Any:
    """Copy of `schema` where every object schema that lists properties rejects unknown ones.

    The API server prunes (and kubectl's strict field validation rejects) fields a structural CRD
    schema does not list; plain JSON Schema would accept them silently.
    """
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _closed(value) for key, value in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def load_crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """Vendored schemas keyed by (apiVersion, kind), from deploy/schemas/<group>_<version>_<Kind>.*."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMAS_DIR.glob("*.openapi.yaml")):
        group, version, kind = path.name.removesuffix(".openapi.yaml").split("_")
        schema = yaml.safe_load(path.read_text())
        schemas[(f"{group}/{version}", kind)] = _closed(copy.deepcopy(schema))
    return schemas


def validate_custom(objs: Iterable[Manifest], overlay: str) -> list[Finding]:
    """Every custom resource must match a vendored openAPIV3Schema."""
    schemas = load_crd_schemas()
    findings: list[Finding] = []
    for obj in objs:
        if is_builtin(obj):
            continue
        schema = schemas.get((obj.get("apiVersion", ""), obj.get("kind", "")))
        if schema is None:
            findings.append(
                Finding(overlay, object_name(obj), f"no vendored schema for {obj.get('apiVersion')}")
            )
            continue
        validator = jsonschema.Draft202012Validator(schema)
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in error.path)
            findings.append(Finding(overlay, object_name(obj), f"{path}: {error.message}"))
    return findings


def no_committed_secrets(objs: Iterable[Manifest], overlay: str) -> list[Finding]:
    """Secrets are created out of band; a rendered Secret means one was committed."""
    return [
        Finding(overlay, object_name(obj), "Secret objects must not be committed (reference by name)")
        for obj in objs
        if obj.get("kind") == "Secret"
    ]


def check_overlay(name: str) -> tuple[list[Manifest], list[Finding]]:
    objs = build_overlay(name)
    findings = validate_builtin(objs, name) + validate_custom(objs, name) + no_committed_secrets(objs, name)
    return objs, findings


def main(argv: list[str]) -> int:
    try:
        find_kubectl()
    except KubectlMissingError as exc:
        print(f"check_deploy: {exc}", file=sys.stderr)
        return 2
    names = argv or overlay_names()
    failed = False
    for name in names:
        try:
            objs, findings = check_overlay(name)
        except KustomizeBuildError as exc:
            print(f"FAIL {exc}")
            failed = True
            continue
        custom = sum(1 for o in objs if not is_builtin(o))
        for finding in findings:
            print(f"FAIL {finding}")
        status = "FAIL" if findings else "ok"
        print(
            f"{status} {name}: {len(objs)} objects, {len(objs) - custom} built-in validated against "
            f"Kubernetes {', '.join(KUBERNETES_VERSIONS)}, "
            f"{custom} custom resources against vendored CRD schemas"
        )
        failed = failed or bool(findings)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
