"""The nearest honest thing to running the rendered manifests on Kubernetes, without a cluster.

No container runtime or apiserver runs on our machines, so this module plays each part with the real programs:

- **apiserver**: the rendered objects go into a store keyed by (kind, namespace, name). An object that renders
  without a namespace lands in `default`, as `kubectl apply -k` puts it, so a Secret, Certificate or Cluster
  in the wrong namespace is simply not found by the pods that need it.
- **cert-manager**: each `Certificate` becomes a `kubernetes.io/tls` Secret (tls.crt, tls.key in PKCS#8, ca.crt)
  in the Certificate's own namespace, for exactly its dnsNames and usages, signed by a test CA that stands in
  for the ClusterIssuer the docs create.
- **CloudNativePG**: each `Cluster` gets a real PostgreSQL listening with TLS on its own address, port 5432,
  with a server certificate for the `<cluster>-rw` Service names (as CNPG issues it) and the `<cluster>-ca`
  Secret. It runs `bootstrap.initdb` as CNPG does: the database and its owner, then the
  `postInitApplicationSQLRefs` (read from the rendered ConfigMap) as superuser, then the managed roles with
  LOGIN and the password of their `basic-auth` Secret. Connections over TCP need TLS and a password.
- **kube-proxy and DNS**: every pod gets its own loopback address (127.0.N.x; Linux routes all of 127/8 to lo)
  and every ClusterIP Service its own address with a TCP proxy from `port` to the `targetPort` of ready pods
  only. Service names (`svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) resolve through an
  /etc/hosts that each pod sees in its own mount namespace (`unshare --mount`), so TLS host names stay names.
- **kubelet**: a container runs as the image would run it (ENTRYPOINT/CMD/ENV/WORKDIR parsed from the
  Dockerfile, `command`/`args` with Kubernetes' override rules and `$(VAR)` expansion), with exactly the
  environment Kubernetes gives it (image ENV, then `envFrom` in order, then `env` with `valueFrom`), no more:
  nothing of the test process leaks in. Volumes (emptyDir, secret with items/defaultMode, configMap) are
  directories under the pod's folder; their mount paths are remapped in env values and arguments. Probes run
  as kubelet runs them: httpGet, grpc (plaintext `grpc.health.v1`), tcpSocket, with their delays, periods,
  timeouts and thresholds, against the pod's address.

The image's /opt/venv is this checkout's .venv (the image installs the same packages).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import asyncpg
import grpc
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from paygate_dev.embedded_pg import EmbeddedPostgres
from support.certs import TestCA
from support.database import FAST_SETTINGS

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
# The image's /opt/venv: this checkout's .venv, or a virtual environment built the way the Dockerfile builds
# the image's (requirements-runtime.lock only) named by PAYGATE_KUBELET_IMAGE_VENV, to check the slim image.
VENV = Path(os.environ.get("PAYGATE_KUBELET_IMAGE_VENV") or sys.prefix)
# The image's paths that are this machine's paths here.
IMAGE_PATHS = {"/opt/venv": str(VENV)}
# python:3.11-slim's own environment, under the Dockerfile's ENV lines.
BASE_IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "GatewayClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "PersistentVolume",
}
CLUSTER_DOMAIN = "cluster.local"
PLATFORM_CLUSTER_ISSUERS = ("paygate-internal-ca",)


class DeployFailure(AssertionError):
    """Something Kubernetes would refuse, or a pod that would not run, with the reason."""


# --- the image --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    env: dict[str, str]
    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    user: str


def _logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def parse_dockerfile(path: Path = DOCKERFILE) -> Image:
    """ENV, ENTRYPOINT, CMD, WORKDIR and USER of the Dockerfile's last stage (the runtime image)."""
    stage: list[str] = []
    for line in _logical_lines(path.read_text()):
        if line.upper().startswith("FROM "):
            stage = []
        stage.append(line)
    env = dict(BASE_IMAGE_ENV)
    entrypoint: list[str] = []
    cmd: list[str] = []
    workdir, user = "/", "root"
    for line in stage:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "ENV":
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                env[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), value)
        elif instruction == "ENTRYPOINT":
            entrypoint = json.loads(rest)
            cmd = []  # Docker: a new ENTRYPOINT resets an inherited CMD
        elif instruction == "CMD":
            cmd = json.loads(rest)
        elif instruction == "WORKDIR":
            workdir = rest.strip()
        elif instruction == "USER":
            user = rest.strip()
    return Image(env, entrypoint, cmd, workdir, user)


# --- the apiserver ----------------------------------------------------------------------------------------


def namespace_of(obj: dict[str, Any]) -> str | None:
    if obj["kind"] in CLUSTER_SCOPED:
        return None
    return obj.get("metadata", {}).get("namespace") or "default"


@dataclass
class Store:
    objects: dict[tuple[str, str | None, str], dict[str, Any]] = field(default_factory=dict)

    def apply(self, obj: dict[str, Any]) -> None:
        self.objects[(obj["kind"], namespace_of(obj), obj["metadata"]["name"])] = obj

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, namespace, name))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for (k, _, _), o in self.objects.items() if k == kind]

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self.get("Secret", namespace, name)
        if secret is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
        return data

    def configmap_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        cm = self.get("ConfigMap", namespace, name)
        if cm is None:
            return None
        data = {k: v.encode() for k, v in (cm.get("data") or {}).items()}
        data.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
        return data


def secret(namespace: str, name: str, data: dict[str, bytes], secret_type: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": secret_type,
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


# --- cert-manager -----------------------------------------------------------------------------------------

_USAGES = {"server auth": ExtendedKeyUsageOID.SERVER_AUTH, "client auth": ExtendedKeyUsageOID.CLIENT_AUTH}


def issue_pem(
    ca: TestCA, common_name: str, dns_names: Iterable[str], usages: Iterable[str], hours: int = 2
) -> tuple[bytes, bytes]:
    """A leaf certificate for exactly these names and extended usages, and its PKCS#8 key, as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ekus = [_USAGES[u] for u in usages if u in _USAGES]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=hours))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
    )
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def ca_pem(ca: TestCA) -> bytes:
    return ca.cert.public_bytes(serialization.Encoding.PEM)


def run_cert_manager(store: Store, issuers: dict[str, TestCA]) -> None:
    """Every Certificate becomes its Secret, in the Certificate's namespace."""
    for cert in store.of_kind("Certificate"):
        spec = cert["spec"]
        ref = spec["issuerRef"]
        if ref.get("kind") != "ClusterIssuer" or ref["name"] not in issuers:
            raise DeployFailure(f"Certificate {cert['metadata']['name']}: no issuer {ref}")
        ca = issuers[ref["name"]]
        algorithm = spec.get("privateKey", {}).get("algorithm", "RSA")
        if algorithm != "ECDSA" or spec.get("privateKey", {}).get("encoding", "PKCS1") != "PKCS8":
            raise DeployFailure(
                f"Certificate {cert['metadata']['name']}: the services read PKCS#8 ECDSA keys"
            )
        crt, key = issue_pem(ca, spec.get("commonName", ""), spec.get("dnsNames", []), spec.get("usages", []))
        store.apply(
            secret(
                namespace_of(cert) or "default",
                spec["secretName"],
                {"tls.crt": crt, "tls.key": key, "ca.crt": ca_pem(ca)},
                "kubernetes.io/tls",
            )
        )


# --- PostgreSQL (CloudNativePG's, or the external one) -------------------------------------------------------


class Postgres:
    """The test suite's embedded PostgreSQL, reached the way a pod reaches CNPG's: TLS on host:5432.

    The embedded build listens on a Unix socket only and has no TLS of its own, so a small front end on
    host:port answers PostgreSQL's SSLRequest, completes the TLS handshake with the server certificate (as
    CNPG's server would) and relays the decrypted protocol to the socket. Plaintext connections are refused
    (`hostssl` only), and every role but the test's own superuser must log in with its password
    (scram-sha-256), so a DSN with a wrong password, host name, CA or sslmode fails as it would in a cluster.
    """

    def __init__(self, folder: Path, host: str, port: int, cert_pem: bytes, key_pem: bytes) -> None:
        self.folder = folder
        self.host = host
        self.port = port
        folder.mkdir(parents=True, exist_ok=True)
        self._cert_file, self._key_file = folder / "server.crt", folder / "server.key"
        self._cert_file.write_bytes(cert_pem)
        self._key_file.write_bytes(key_pem)
        self._key_file.chmod(0o600)
        self.embedded = EmbeddedPostgres(folder / "pgdata", dict(FAST_SETTINGS))
        self.admin_dsn = ""
        self._server: asyncio.Server | None = None
        self._context: ssl.SSLContext | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.socket_path = ""

    async def start(self) -> None:
        self.admin_dsn = await asyncio.to_thread(self.embedded.start)
        query = parse_qs(urlsplit(self.admin_dsn).query)
        socket_dir = query.get("host", [""])[0]
        assert socket_dir, f"embedded PostgreSQL gave no socket directory: {self.admin_dsn}"
        port = query.get("port", ["5432"])[0]
        self.socket_path = f"{socket_dir}/.s.PGSQL.{port}"
        hba = self.embedded.pgdata / "pg_hba.conf"
        hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(self._cert_file, self._key_file)
        await self.resume()

    async def resume(self) -> None:
        """Accept connections (again)."""
        context = self._context
        assert context is not None
        self._server = await asyncio.start_server(
            lambda r, w: self._serve(r, w, context), self.host, self.port, reuse_address=True
        )

    async def interrupt(self) -> None:
        """A database outage as the pods see it: open connections drop and new ones are refused."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        try:
            while True:
                head = await reader.readexactly(8)
                length, code = struct.unpack("!II", head)
                if length == 8 and code == _GSSENC_REQUEST:
                    writer.write(b"N")
                    await writer.drain()
                    continue
                break
            if length != 8 or code != _SSL_REQUEST:
                writer.close()  # hostssl only: a plaintext startup is refused
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(context)
            up_reader, up_writer = await asyncio.open_unix_connection(self.socket_path)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            writer.close()
            return
        self._open |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True)
        self._open -= {writer, up_writer}

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        await asyncio.to_thread(self.embedded.stop)

    async def admin(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_dsn, database=database)

    def log_tail(self) -> str:
        log = self.embedded.pgdata / "log"
        return log.read_text(errors="replace")[-3000:] if log.exists() else ""


_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def run_cnpg_initdb(pg: Postgres, store: Store, cluster: dict[str, Any]) -> None:
    """What CloudNativePG does for `bootstrap.initdb` and `managed.roles` of a new Cluster."""
    namespace = namespace_of(cluster) or "default"
    name = cluster["metadata"]["name"]
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    database, owner = initdb.get("database", "app"), initdb.get("owner", "app")
    admin = await pg.admin()
    try:
        await admin.execute(f"CREATE ROLE {_quote_ident(owner)} LOGIN")
        await admin.execute(f"CREATE DATABASE {_quote_ident(database)} OWNER {_quote_ident(owner)}")
    finally:
        await admin.close()
    app = await pg.admin(database)
    try:
        refs = initdb.get("postInitApplicationSQLRefs", {})
        for ref in refs.get("secretRefs", []) + refs.get("configMapRefs", []):
            kind = "Secret" if ref in refs.get("secretRefs", []) else "ConfigMap"
            data = (store.secret_data if kind == "Secret" else store.configmap_data)(namespace, ref["name"])
            if data is None or ref["key"] not in data:
                raise DeployFailure(
                    f"Cluster {name}: {kind} {namespace}/{ref['name']} key {ref['key']} not found"
                )
            await app.execute(data[ref["key"]].decode())
        for role in cluster["spec"].get("managed", {}).get("roles", []):
            secret_name = role.get("passwordSecret", {}).get("name")
            data = store.secret_data(namespace, secret_name) if secret_name else None
            if secret_name and data is None:
                raise DeployFailure(
                    f"Cluster {name}: role {role['name']}: Secret {namespace}/{secret_name} not found"
                )
            if data is not None and data.get("username", b"").decode() != role["name"]:
                raise DeployFailure(f"Cluster {name}: Secret {secret_name} username must be {role['name']}")
            exists = await app.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role["name"])
            if not exists:
                await app.execute(f"CREATE ROLE {_quote_ident(role['name'])}")
            options = [
                "LOGIN" if role.get("login") else "NOLOGIN",
                "INHERIT" if role.get("inherit", True) else "NOINHERIT",
                "SUPERUSER" if role.get("superuser") else "NOSUPERUSER",
                "CREATEDB" if role.get("createdb") else "NOCREATEDB",
                "CREATEROLE" if role.get("createrole") else "NOCREATEROLE",
            ]
            if data is not None:
                options.append(f"PASSWORD {_quote_literal(data['password'].decode())}")
            await app.execute(f"ALTER ROLE {_quote_ident(role['name'])} {' '.join(options)}")
    finally:
        await app.close()


def cnpg_service_names(cluster_name: str, namespace: str) -> list[str]:
    """The DNS names on CNPG's server certificate: the -rw, -r and -ro Services."""
    names = []
    for suffix in ("rw", "r", "ro"):
        svc = f"{cluster_name}-{suffix}"
        names += [
            svc,
            f"{svc}.{namespace}",
            f"{svc}.{namespace}.svc",
            f"{svc}.{namespace}.svc.{CLUSTER_DOMAIN}",
        ]
    return names


# --- pods -------------------------------------------------------------------------------------------------


@dataclass
class Pod:
    name: str
    namespace: str
    owner: str  # kind/name of the workload
    labels: dict[str, str]
    spec: dict[str, Any]
    ip: str
    folder: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    ready: bool = False
    live_ok: int = 0
    started_at: float = 0.0
    problems: list[str] = field(default_factory=list)
    container_env: dict[str, dict[str, str]] = field(default_factory=dict)
    container_cwd: dict[str, str] = field(default_factory=dict)

    def log_tail(self, chars: int = 2500) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs if p.exists()
        )

    @property
    def container(self) -> dict[str, Any]:
        return self.spec["containers"][0]

    def port_number(self, port: int | str, container: dict[str, Any] | None = None) -> int:
        if isinstance(port, int):
            return port
        if port.isdigit():
            return int(port)
        for c in [container] if container else self.spec["containers"]:
            for p in c.get("ports", []):
                if p.get("name") == port:
                    return int(p["containerPort"])
        raise DeployFailure(f"pod {self.name}: no container port named {port!r}")


_VAR_REF = re.compile(r"\$\$|\$\((\w+)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables expand, $$ escapes, anything else stays as written."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _VAR_REF.sub(sub, value)


class Kubelet:
    """Starts pods on loopback addresses, materialises their volumes and environment, probes them."""

    def __init__(self, store: Store, root: Path, subnet: int, hosts_file: Path) -> None:
        self.store = store
        self.root = root
        self.subnet = subnet
        self.hosts_file = hosts_file
        self.image = parse_dockerfile()
        self.pods: list[Pod] = []
        self._next_ip = 10
        self.unshare = shutil.which("unshare")
        self.mount = shutil.which("mount")
        if self.unshare is None or self.mount is None:
            raise DeployFailure("util-linux unshare and mount are needed to give each pod its own /etc/hosts")

    def allocate_ip(self) -> str:
        ip = f"127.0.{self.subnet}.{self._next_ip}"
        self._next_ip += 1
        return ip

    # -- environment ------------------------------------------------------------------------------------

    def _lookup(self, kind: str, pod: Pod, name: str, key: str | None, optional: bool) -> Any:
        data = (self.store.secret_data if kind == "Secret" else self.store.configmap_data)(
            pod.namespace, name
        )
        if data is None:
            if optional:
                return None
            raise DeployFailure(
                f"pod {pod.name}: {kind} {pod.namespace}/{name} not found (CreateContainerConfigError)"
            )
        if key is None:
            return data
        if key not in data:
            if optional:
                return None
            raise DeployFailure(
                f"pod {pod.name}: {kind} {name} has no key {key!r} (CreateContainerConfigError)"
            )
        return data[key].decode()

    def _field(self, pod: Pod, path: str) -> str:
        fields = {
            "metadata.name": pod.name,
            "metadata.namespace": pod.namespace,
            "status.podIP": pod.ip,
            "status.podIPs": pod.ip,
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "node-1",
            "spec.serviceAccountName": pod.spec.get("serviceAccountName", "default"),
        }
        match = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
        if match:
            return pod.labels.get(match.group(1), "")
        if path not in fields:
            raise DeployFailure(f"pod {pod.name}: unsupported fieldRef {path}")
        return fields[path]

    def container_env(self, pod: Pod, container: dict[str, Any], mounts: dict[str, Path]) -> dict[str, str]:
        env = {k: self._image_path(v) for k, v in self.image.env.items()}
        env["HOSTNAME"] = pod.name
        env.setdefault("HOME", "/")
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                ref, kind = source["configMapRef"], "ConfigMap"
            else:
                ref, kind = source["secretRef"], "Secret"
            data = self._lookup(kind, pod, ref["name"], None, ref.get("optional", False)) or {}
            for key, value in data.items():
                env[prefix + key] = value.decode()
        for var in container.get("env", []):
            if "valueFrom" in var:
                source = var["valueFrom"]
                if "fieldRef" in source:
                    value = self._field(pod, source["fieldRef"]["fieldPath"])
                elif "secretKeyRef" in source or "configMapKeyRef" in source:
                    kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
                    ref = source["secretKeyRef" if kind == "Secret" else "configMapKeyRef"]
                    value = self._lookup(kind, pod, ref["name"], ref["key"], ref.get("optional", False))
                    if value is None:
                        continue
                elif "resourceFieldRef" in source:
                    value = str(container.get("resources", {}).get("limits", {}).get("cpu", "1"))
                else:
                    raise DeployFailure(f"pod {pod.name}: unsupported valueFrom {source}")
            else:
                value = expand(var.get("value", ""), env)
            env[var["name"]] = value
        return {k: self._remap(v, mounts) for k, v in env.items()}

    @staticmethod
    def _image_path(value: str) -> str:
        for image_path, here in IMAGE_PATHS.items():
            value = re.sub(rf"(?<![\w.-]){re.escape(image_path)}(?=/|:|$)", here, value)
        return value

    @staticmethod
    def _remap(value: str, mounts: dict[str, Path]) -> str:
        if not mounts:
            return value
        # The host paths that stand in for the image's own (the venv for /opt/venv) are not container paths:
        # a checkout under /tmp must not have its venv remapped into a pod's /tmp volume. Shield them first.
        shielded: dict[str, str] = {}
        for index, here in enumerate(sorted(IMAGE_PATHS.values(), key=len, reverse=True)):
            token = f"\x00host{index}\x00"
            if here in value:
                shielded[token] = here
                value = value.replace(here, token)
        # One pass, longest mount path first, so a remapped path is never remapped again.
        alternatives = "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
        pattern = rf"(?<![\w.-])({alternatives})(?=/|$|[^\w.-])"
        value = re.sub(pattern, lambda m: str(mounts[m.group(1)]), value)
        for token, here in shielded.items():
            value = value.replace(token, here)
        return value

    # -- volumes ----------------------------------------------------------------------------------------

    def _materialise_volumes(self, pod: Pod) -> dict[str, Path]:
        volumes: dict[str, Path] = {}
        for volume in pod.spec.get("volumes", []):
            folder = pod.folder / "volumes" / volume["name"]
            folder.mkdir(parents=True)
            if "emptyDir" in volume:
                pass
            elif "secret" in volume or "configMap" in volume:
                kind = "Secret" if "secret" in volume else "ConfigMap"
                source = volume["secret" if kind == "Secret" else "configMap"]
                name = source["secretName" if kind == "Secret" else "name"]
                data = self._lookup(kind, pod, name, None, source.get("optional", False)) or {}
                mode = source.get("defaultMode", 0o644)
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    if item["key"] not in data:
                        raise DeployFailure(
                            f"pod {pod.name}: volume {volume['name']}: {kind} {name} has no key {item['key']}"
                        )
                    target = folder / item["path"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data[item["key"]])
                    # The files are owned by root and the pod's fsGroup in Kubernetes; this test runs them as
                    # its own user, so keep them readable by it while honouring "no write".
                    target.chmod((item.get("mode", mode) | 0o400) & 0o555)
            else:
                raise DeployFailure(f"pod {pod.name}: unsupported volume {volume}")
            volumes[volume["name"]] = folder
        return volumes

    # -- running ----------------------------------------------------------------------------------------

    def argv(self, container: dict[str, Any], env: dict[str, str]) -> list[str]:
        """Kubernetes: `command` replaces ENTRYPOINT (and drops CMD); `args` replaces CMD."""
        if container.get("command"):
            argv = list(container["command"]) + list(container.get("args", []))
        elif "args" in container:
            argv = self.image.entrypoint + list(container["args"])
        else:
            argv = self.image.entrypoint + self.image.cmd
        argv = [expand(a, env) for a in argv]
        if not argv:
            raise DeployFailure("container has no command")
        if "/" not in argv[0]:
            found = shutil.which(argv[0], path=env.get("PATH", ""))
            if found is None:
                raise DeployFailure(f"executable {argv[0]!r} not found in the image's PATH {env.get('PATH')}")
            argv[0] = found
        return argv

    def new_pod(self, owner: str, template: dict[str, Any], namespace: str, suffix: str) -> Pod:
        name = f"{owner.split('/', 1)[1]}-{suffix}"
        pod = Pod(
            name=name,
            namespace=namespace,
            owner=owner,
            labels=dict(template["metadata"].get("labels", {})),
            spec=template["spec"],
            ip=self.allocate_ip(),
            folder=self.root / "pods" / name,
        )
        pod.folder.mkdir(parents=True)
        self.pods.append(pod)
        return pod

    def _spawn(
        self,
        pod: Pod,
        container: dict[str, Any],
        volumes: dict[str, Path],
        extra_argv: list[str] | None = None,
    ) -> subprocess.Popen[bytes]:
        mounts = {
            m["mountPath"]: volumes[m["name"]] / m.get("subPath", "")
            for m in container.get("volumeMounts", [])
        }
        env = self.container_env(pod, container, mounts)
        argv = extra_argv if extra_argv is not None else self.argv(container, env)
        argv = [self._remap(a, mounts) for a in argv]
        if extra_argv is not None and "/" not in argv[0]:
            found = shutil.which(argv[0], path=env.get("PATH", ""))
            if found is None:
                raise DeployFailure(f"executable {argv[0]!r} not found in the container's PATH")
            argv[0] = found
        workdir = container.get("workingDir") or self.image.workdir
        cwd = self._remap(workdir, mounts)
        if not Path(cwd).is_dir():
            raise DeployFailure(
                f"pod {pod.name}: working directory {workdir} does not exist (mounted: {sorted(mounts)})"
            )
        pod.container_env[container["name"]] = env
        pod.container_cwd[container["name"]] = cwd
        namespace_args = ["--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            namespace_args.insert(0, "--map-root-user")
        wrapper = [
            self.unshare or "unshare",
            *namespace_args,
            "--",
            "/bin/sh",
            "-c",
            f'{self.mount} --bind "$0" /etc/hosts && exec "$@"',
            str(self.hosts_file),
            *argv,
        ]
        log = pod.folder / f"{container['name']}-{len(pod.logs)}.log"
        pod.logs.append(log)
        with open(log, "wb") as handle:
            proc = subprocess.Popen(
                wrapper, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
            )
        return proc

    def start(self, pod: Pod) -> None:
        volumes = self._materialise_volumes(pod)
        pod._volumes = volumes  # type: ignore[attr-defined]
        for init in pod.spec.get("initContainers", []):
            proc = self._spawn(pod, init, volumes)
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise DeployFailure(f"pod {pod.name}: init container {init['name']} did not finish") from None
            if code != 0:
                raise DeployFailure(
                    f"pod {pod.name}: init container {init['name']} exited {code}\n{pod.log_tail()}"
                )
        pod.started_at = time.monotonic()
        pod.procs = [self._spawn(pod, c, volumes) for c in pod.spec["containers"]]

    def exec(self, pod: Pod, argv: list[str], timeout: float = 60) -> str:
        """`kubectl exec POD -- argv`: the container's environment, mount namespace view and working dir."""
        container = pod.container
        volumes = pod._volumes  # type: ignore[attr-defined]
        proc = self._spawn(pod, container, volumes, extra_argv=argv)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise DeployFailure(f"exec {argv} in {pod.name} did not finish") from None
        output = pod.logs[-1].read_text()
        if proc.returncode != 0:
            raise DeployFailure(f"exec {argv} in {pod.name} exited {proc.returncode}:\n{output[-2000:]}")
        return output

    def exited(self, pod: Pod) -> str | None:
        for proc in pod.procs:
            code = proc.poll()
            if code is not None:
                return f"pod {pod.name} ({pod.owner}) exited with code {code}:\n{pod.log_tail()}"
        return None

    def stop(self, pod: Pod, grace: float) -> list[int | None]:
        codes = []
        for proc in pod.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
                    codes.append(None)
                    continue
            codes.append(proc.returncode)
        return codes


# --- probes -----------------------------------------------------------------------------------------------


async def run_probe(pod: Pod, probe: dict[str, Any]) -> str | None:
    """One probe as kubelet runs it; None on success, else why it failed."""
    timeout = probe.get("timeoutSeconds", 1)
    container = pod.container
    try:
        if "httpGet" in probe:
            get = probe["httpGet"]
            scheme = get.get("scheme", "HTTP").lower()
            port = pod.port_number(get["port"], container)
            host = get.get("host") or pod.ip
            headers = {"User-Agent": "kube-probe/1.32", "Accept": "*/*"}
            headers.update({h["name"]: h["value"] for h in get.get("httpHeaders", [])})
            url = f"{scheme}://{host}:{port}{get.get('path', '/')}"
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
                http.get(url, headers=headers, ssl=False, allow_redirects=False) as response,
            ):
                if 200 <= response.status < 400:
                    return None
                return f"HTTP GET {url}: {response.status} {(await response.text())[:200]}"
        if "grpc" in probe:
            port = pod.port_number(probe["grpc"]["port"], container)
            async with grpc.aio.insecure_channel(f"{pod.ip}:{port}") as channel:
                reply = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=probe["grpc"].get("service", "")), timeout=timeout
                )
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return None
            return f"gRPC health on {pod.ip}:{port}: {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
        if "tcpSocket" in probe:
            port = pod.port_number(probe["tcpSocket"]["port"], container)
            _, writer = await asyncio.wait_for(asyncio.open_connection(pod.ip, port), timeout)
            writer.close()
            return None
        if "exec" in probe:
            return "exec probes are not simulated"
    except (TimeoutError, aiohttp.ClientError, OSError, grpc.aio.AioRpcError) as error:
        return f"{type(error).__name__}: {str(error)[:300]}"
    return f"unknown probe {probe}"


@dataclass
class ProbeState:
    started: bool = False
    ready: bool = False
    live_successes: int = 0
    last_failure: dict[str, str] = field(default_factory=dict)
    fatal: str | None = None


async def kubelet_probes(pod: Pod, state: ProbeState) -> None:
    """startupProbe until it passes, then livenessProbe and readinessProbe on their own schedules."""
    container = pod.container
    started = time.monotonic()
    startup = container.get("startupProbe")
    if startup is not None:
        await asyncio.sleep(startup.get("initialDelaySeconds", 0))
        failures = 0
        while True:
            problem = await run_probe(pod, startup)
            if problem is None:
                break
            failures += 1
            state.last_failure["startup"] = problem
            if failures >= startup.get("failureThreshold", 3):
                state.fatal = f"pod {pod.name}: startupProbe failed {failures} times: {problem}"
                return
            await asyncio.sleep(startup.get("periodSeconds", 10))
    state.started = True

    async def loop(kind: str, probe: dict[str, Any]) -> None:
        # initialDelaySeconds counts from the container's start; the startup probe's time is part of it.
        await asyncio.sleep(max(0.0, probe.get("initialDelaySeconds", 0) - (time.monotonic() - started)))
        failures = successes = 0
        while True:
            problem = await run_probe(pod, probe)
            if problem is None:
                failures, successes = 0, successes + 1
                if kind == "readiness" and successes >= probe.get("successThreshold", 1):
                    state.ready = pod.ready = True
                if kind == "liveness":
                    state.live_successes += 1
            else:
                failures, successes = failures + 1, 0
                state.last_failure[kind] = problem
                if failures >= probe.get("failureThreshold", 3):
                    if kind == "liveness":
                        state.fatal = f"pod {pod.name}: livenessProbe failed {failures} times (kubelet restarts it): {problem}"
                        return
                    state.ready = pod.ready = False
            await asyncio.sleep(probe.get("periodSeconds", 10))

    loops = []
    if "livenessProbe" in container:
        loops.append(loop("liveness", container["livenessProbe"]))
    if "readinessProbe" in container:
        loops.append(loop("readiness", container["readinessProbe"]))
    else:
        state.ready = pod.ready = True
    await asyncio.gather(*loops)


# --- Services: DNS names and kube-proxy ----------------------------------------------------------------------


def service_dns_names(name: str, namespace: str, pod_namespace: str) -> list[str]:
    names = [f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.{CLUSTER_DOMAIN}"]
    return ([name] if namespace == pod_namespace else []) + names


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


class ServiceProxy:
    """kube-proxy for one ClusterIP Service: each port forwards to targetPort of a ready pod, round robin."""

    def __init__(self, service: dict[str, Any], cluster_ip: str, pods: list[Pod]) -> None:
        self.service = service
        self.cluster_ip = cluster_ip
        self.pods = pods
        self.servers: list[asyncio.Server] = []
        self._turn = 0

    def endpoints(self) -> list[Pod]:
        ns = namespace_of(self.service)
        selector = self.service["spec"].get("selector", {})
        return [p for p in self.pods if p.namespace == ns and selects(selector, p.labels) and p.ready]

    async def start(self) -> None:
        for port in self.service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])

            async def handle(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Any = target
            ) -> None:
                ready = self.endpoints()
                if not ready:
                    writer.close()
                    return
                pod = ready[self._turn % len(ready)]
                self._turn += 1
                try:
                    number = pod.port_number(target)
                    up_reader, up_writer = await asyncio.open_connection(pod.ip, number)
                except (OSError, DeployFailure):
                    writer.close()
                    return
                await asyncio.gather(
                    _pipe(reader, up_writer), _pipe(up_reader, writer), return_exceptions=True
                )

            server = await asyncio.start_server(handle, self.cluster_ip, port["port"], reuse_address=True)
            self.servers.append(server)

    async def stop(self) -> None:
        for server in self.servers:
            server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def write_hosts(path: Path, entries: dict[str, list[str]]) -> None:
    lines = ["127.0.0.1 localhost", "::1 localhost"]
    for ip, names in entries.items():
        ipaddress.ip_address(ip)
        lines.append(f"{ip} {' '.join(names)}")
    path.write_text("\n".join(lines) + "\n")


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]
