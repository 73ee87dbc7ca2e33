"""Each overlay, rendered with kustomize, deployed the way docs/deploy.md says, must start, serve and take a payment.

See kubelet_sim.py for what plays apiserver, cert-manager, CloudNativePG, kube-proxy, DNS and kubelet. The steps
follow the docs: the Secrets come from the documented `paygate secrets generate` command, the database is
bootstrapped by the same SQL CNPG runs (or the docs' psql steps for external-db), the migration Jobs run first
and must succeed, then every Deployment's pod starts with the environment Kubernetes would give it and must pass
its own probes on its own address; then a merchant is created as the docs say (`kubectl exec` into the keys
pod), a session is created and paid with a signed Stripe webhook through the gateway's Service, and every pod
stops cleanly on SIGTERM within its grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import check_deploy
import kubelet_sim as k8s

from paygate_dev.devtools.signing import new_stripe_webhook_secret, stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.certs import TestCA

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs" / "deploy.md"
BOOTSTRAP_SQL = REPO / "deploy" / "components" / "cnpg" / "bootstrap.sql"
OVERLAYS = ("dev", "prod", "external-db")
NAMESPACE = "paygate"
# Each overlay's pods and Services get their own 127.0.N.0/24, so overlays never share an address.
SUBNETS = {"dev": 61, "prod": 62, "external-db": 63}
EXTERNAL_DB_HOST = "db.example.test"
STARTUP_TIMEOUT_S = 90.0
PAYMENT_TIMEOUT_S = 60.0


# --- what the docs say ------------------------------------------------------------------------------------


def documented_command(prefix: str, must_contain: str | None = None) -> str:
    """The one command line in docs/deploy.md that starts with `prefix` (and contains `must_contain`)."""
    found = []
    for raw in DOCS.read_text().splitlines():
        line = raw.strip()
        if line.startswith(prefix) and (must_contain is None or must_contain in line):
            found.append(line)
    assert len(found) == 1, (
        f"docs/deploy.md should show exactly one `{prefix}` line ({must_contain}): {found}"
    )
    return found[0]


def shell_words(line: str, variables: dict[str, str]) -> tuple[list[str], str | None]:
    """A documented shell line as argv with $VAR filled in, and the file its stdout is redirected to."""
    words = shlex.split(line, comments=True)
    redirect = None
    if ">" in words:
        at = words.index(">")
        redirect = words[at + 1]
        words = words[:at] + words[at + 2 :]

    def fill(word: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            assert name in variables, f"the docs' command uses ${name}, which the test does not know"
            return variables[name]

        return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, word)

    return [fill(w) for w in words], redirect


def secrets_from_docs(overlay: str, variables: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    """Run the documented `paygate secrets generate` for this overlay and read the Secrets it prints."""
    line = documented_command(
        "paygate secrets generate",
        "--overlay external-db" if overlay == "external-db" else '--overlay "$OVERLAY"',
    )
    argv, _ = shell_words(line, {**variables, "OVERLAY": overlay})
    assert argv[0] == "paygate"
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "paygate"), *argv[1:]],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{line}\n{result.stderr}"
    docs = k8s.load_yaml_documents(result.stdout)
    assert docs and all(d["kind"] == "Secret" for d in docs)
    return docs


# --- one deployment ---------------------------------------------------------------------------------------


@dataclass
class Deployment:
    overlay: str
    root: Path
    store: k8s.Store = field(default_factory=k8s.Store)
    kubelet: k8s.Kubelet | None = None
    postgres: list[k8s.Postgres] = field(default_factory=list)
    proxies: dict[str, k8s.ServiceProxy] = field(default_factory=dict)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    probes: dict[str, k8s.ProbeState] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)

    @property
    def subnet(self) -> int:
        return SUBNETS[self.overlay]

    def add_host(self, ip: str, names: list[str]) -> None:
        self.hosts.setdefault(ip, [])
        self.hosts[ip] += [n for n in names if n not in self.hosts[ip]]

    def pods_of(self, kind: str) -> list[k8s.Pod]:
        assert self.kubelet is not None
        return [p for p in self.kubelet.pods if p.owner.startswith(kind + "/")]

    def failure(self, message: str) -> str:
        logs = "\n".join(
            f"==== {p.name} ({p.ip})\n{p.log_tail(1500)}" for p in (self.kubelet.pods if self.kubelet else [])
        )
        db = "\n".join(pg.log_tail() for pg in self.postgres)
        return f"{self.overlay}: {message}\n{logs}\n==== postgres\n{db[-1500:]}"


async def start_database(dep: Deployment, ca: TestCA, names: list[str], name: str) -> k8s.Postgres:
    cert, key = k8s.issue_pem(ca, names[0], names, ["server auth"])
    ip = f"127.0.{dep.subnet}.2"
    pg = k8s.Postgres(dep.root / f"db-{name}", ip, 5432, cert, key)
    await pg.start()
    dep.postgres.append(pg)
    dep.add_host(ip, names)
    return pg


async def deploy(dep: Deployment, objects: list[dict[str, Any]]) -> None:
    """`kubectl apply -k`, then everything the docs do before the Jobs run."""
    for obj in objects:
        dep.store.apply(obj)

    # The platform: the ClusterIssuer the docs create, and for external-db a database with its own CA.
    issuers = {name: TestCA(dep.root / "issuer", name) for name in k8s.PLATFORM_CLUSTER_ISSUERS}
    db_ca = TestCA(dep.root / "db-ca", "database-ca")
    dep.variables = {
        "STRIPE_WEBHOOK_SECRET": new_stripe_webhook_secret(),
        "DB_HOST": EXTERNAL_DB_HOST,
        "DB_CA_FILE": str(db_ca.ca_file),
    }
    for obj in secrets_from_docs(dep.overlay, dep.variables, dep.root):
        dep.store.apply(obj)

    k8s.run_cert_manager(dep.store, issuers)

    clusters = dep.store.of_kind("Cluster")
    if dep.overlay == "external-db":
        assert not clusters
        pg = await start_database(dep, db_ca, [EXTERNAL_DB_HOST], "external")
        # docs/deploy.md, "External database": create the database, run the bootstrap SQL, then the role SQL
        # that `paygate secrets generate --role-sql` wrote.
        admin = await pg.admin()
        try:
            await admin.execute("CREATE DATABASE paygate")
        finally:
            await admin.close()
        role_sql = dep.root / shell_words(documented_command("psql", "roles.sql"), {"ADMIN_DSN": ""})[0][-1]
        conn = await pg.admin("paygate")
        try:
            await conn.execute(BOOTSTRAP_SQL.read_text())
            await conn.execute(role_sql.read_text())
        finally:
            await conn.close()
    else:
        # `kubectl -n paygate wait --for=condition=Ready cluster/paygate-db`: the Cluster must be there.
        assert dep.store.get("Cluster", NAMESPACE, "paygate-db") is not None, (
            f"{dep.overlay}: Cluster paygate-db is not in namespace {NAMESPACE} "
            f"(it rendered into {[k8s.namespace_of(c) for c in clusters]})"
        )
        for cluster in clusters:
            ns = k8s.namespace_of(cluster) or "default"
            name = cluster["metadata"]["name"]
            cnpg_ca = TestCA(dep.root / f"cnpg-{name}", f"{name}-ca")
            pg = await start_database(dep, cnpg_ca, k8s.cnpg_service_names(name, ns), name)
            dep.store.apply(
                k8s.secret(
                    ns, f"{name}-ca", {"ca.crt": k8s.ca_pem(cnpg_ca), "ca.key": b"(kept by the operator)"}
                )
            )
            await k8s.run_cnpg_initdb(pg, dep.store, cluster)


def plan_pods(dep: Deployment) -> None:
    """One pod per Job and Deployment, each with its own address; Service addresses and names."""
    hosts_file = dep.root / "hosts"
    dep.kubelet = kubelet = k8s.Kubelet(dep.store, dep.root, dep.subnet, hosts_file)
    for kind in ("Job", "Deployment"):
        for obj in dep.store.of_kind(kind):
            ns = k8s.namespace_of(obj) or "default"
            kubelet.new_pod(f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"], ns, "0")
    for service in dep.store.of_kind("Service"):
        ns = k8s.namespace_of(service) or "default"
        names = k8s.service_dns_names(service["metadata"]["name"], ns, NAMESPACE)
        if service["spec"].get("clusterIP") == "None":
            selector = service["spec"].get("selector", {})
            for pod in kubelet.pods:
                if pod.namespace == ns and k8s.selects(selector, pod.labels):
                    dep.add_host(pod.ip, names)
        else:
            ip = kubelet.allocate_ip()
            dep.proxies[service["metadata"]["name"]] = k8s.ServiceProxy(service, ip, kubelet.pods)
            dep.add_host(ip, names)
    k8s.write_hosts(hosts_file, dep.hosts)


async def run_jobs(dep: Deployment) -> None:
    assert dep.kubelet is not None
    jobs = dep.pods_of("Job")
    assert jobs, f"{dep.overlay}: no migration Jobs"
    for pod in jobs:
        dep.kubelet.start(pod)
    for pod in jobs:
        job = dep.store.get("Job", pod.namespace, pod.owner.split("/", 1)[1])
        assert job is not None
        deadline = min(float(job["spec"].get("activeDeadlineSeconds", 120)), 120.0)
        code = await asyncio.to_thread(pod.procs[0].wait, deadline)
        assert code == 0, dep.failure(f"Job {pod.owner} exited with code {code}")


async def launch_deployments(dep: Deployment) -> None:
    assert dep.kubelet is not None
    for proxy in dep.proxies.values():
        await proxy.start()
    for pod in dep.pods_of("Deployment"):
        dep.kubelet.start(pod)
        dep.probes[pod.name] = state = k8s.ProbeState()
        dep.tasks.append(asyncio.create_task(k8s.kubelet_probes(pod, state)))


async def pods_wait_for_their_schema(dep: Deployment) -> None:
    """`kubectl apply` starts the Deployments beside the migration Jobs: until the Jobs are done every pod
    waits for its schema, alive (no crash loop) and out of the Services (its startupProbe does not pass)."""
    assert dep.kubelet is not None
    await launch_deployments(dep)
    pending = dep.pods_of("Deployment")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while pending:
        for pod in list(pending):
            exited = dep.kubelet.exited(pod)
            assert exited is None, dep.failure(f"started before its migrations: {exited}")
            if "waiting for migrations" in pod.log_tail():
                pending.remove(pod)
        assert time.monotonic() < deadline, dep.failure(f"{[p.name for p in pending]} never said they wait")
        await asyncio.sleep(0.5)
    await asyncio.sleep(6)  # more than a startupProbe period: kubelet has probed each pod by now
    for pod in dep.pods_of("Deployment"):
        exited = dep.kubelet.exited(pod)
        assert exited is None, dep.failure(f"gave up waiting for its migrations: {exited}")
        assert not dep.probes[pod.name].started and not pod.ready, dep.failure(f"{pod.name} ready unmigrated")


async def start_deployments(dep: Deployment, *, launched: bool = False) -> None:
    assert dep.kubelet is not None
    if not launched:
        await launch_deployments(dep)
    pods = dep.pods_of("Deployment")
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        for pod in pods:
            exited = dep.kubelet.exited(pod)
            assert exited is None, dep.failure(exited or "")
            fatal = dep.probes[pod.name].fatal
            assert fatal is None, dep.failure(fatal or "")
        pending = [
            p.name
            for p in pods
            if not dep.probes[p.name].ready
            or ("livenessProbe" in p.container and dep.probes[p.name].live_successes == 0)
        ]
        if not pending:
            return
        if time.monotonic() > deadline:
            why = {p: dep.probes[p].last_failure for p in pending}
            raise AssertionError(dep.failure(f"not ready and live within {STARTUP_TIMEOUT_S:g}s: {why}"))
        await asyncio.sleep(0.5)


async def gateways_see_their_peers(dep: Deployment, timeout_s: float = 20.0) -> None:
    """Wait until every gateway pod reports each gRPC peer up (`paygate_peer_up` on its metrics port), as an
    operator reads it after a rollout. A gateway's readiness never depends on its peers, and its channels
    reconnect with up to 5 s of backoff, so a peer that became ready a moment ago may not be reachable from
    it yet (the dev overlay starts every Deployment with the Jobs): a call then is UNAVAILABLE, which CI met
    once on this test."""
    gateways = [p for p in dep.pods_of("Deployment") if p.owner == "Deployment/paygate-gateway"]
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
        for pod in gateways:
            port = next(p["containerPort"] for p in pod.container["ports"] if p.get("name") == "metrics")
            seen = ""
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with http.get(f"http://{pod.ip}:{port}/metrics") as response:
                        seen = await response.text()
                up = re.findall(r'^paygate_peer_up\{peer="(\w+)"\} (\S+)$', seen, re.MULTILINE)
                if up and all(float(value) == 1.0 for _, value in up):
                    break
                assert time.monotonic() < deadline, dep.failure(f"{pod.name}: peers not all up: {up}")
                await asyncio.sleep(0.5)


async def take_a_payment(dep: Deployment) -> None:
    """A merchant as the docs make one, then a session paid by a signed Stripe webhook via the Service."""
    assert dep.kubelet is not None
    await gateways_see_their_peers(dep)
    line = documented_command("kubectl -n paygate exec deploy/paygate-keys --")
    argv = shell_words(line, {})[0]
    command = argv[argv.index("--") + 1 :]
    (keys_pod,) = [p for p in dep.pods_of("Deployment") if p.owner == "Deployment/paygate-keys"]
    output = await asyncio.to_thread(dep.kubelet.exec, keys_pod, command)
    match = re.search(r"\bsk_test_[A-Za-z0-9_]+", output)
    assert match, dep.failure(f"`{line}` printed no secret key: {output}")
    api_key = match.group(0)

    gateway = dep.proxies["paygate-gateway"]
    port = next(p["port"] for p in gateway.service["spec"]["ports"] if p["name"] == "http")
    base = f"http://{gateway.cluster_ip}:{port}"
    secret = dep.variables["STRIPE_WEBHOOK_SECRET"]
    headers = {"X-API-Key": api_key}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(
            f"{base}/v1/sessions",
            json={"amount": "12.34", "currency": "EUR", "provider": "stripe"},
            headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        ) as response:
            body = await response.json()
            assert response.status == 201, dep.failure(f"POST /v1/sessions: {response.status} {body}")
        session = body
        event = build_stripe_event(
            "checkout.session.completed", session["id"], int(session["amount_minor"]), session["currency"]
        )
        raw, signed = stripe_delivery(event, secret, int(time.time()))
        async with http.post(f"{base}/webhooks/stripe", data=raw, headers=signed) as response:
            reply = await response.json()
            assert response.status == 200 and reply.get("received") is True, dep.failure(
                f"webhook: {response.status} {reply}"
            )
        deadline = time.monotonic() + PAYMENT_TIMEOUT_S
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            async with http.get(f"{base}/v1/sessions/{session['id']}", headers=headers) as response:
                last = await response.json()
            if last.get("status") == "paid" and last.get("invoice_id") and last.get("access_url"):
                return
            await asyncio.sleep(0.5)
        raise AssertionError(dep.failure(f"the session was not paid and fulfilled: {json.dumps(last)[:800]}"))


async def a_database_outage_takes_pods_out_of_service_without_restarts(dep: Deployment) -> None:
    """While the database is unreachable every pod fails its readinessProbe (gRPC services answer
    NOT_SERVING, the gateway's /readyz 503) and passes its livenessProbe; once it is back, all are ready."""
    (pg,) = dep.postgres
    pods = dep.pods_of("Deployment")

    async def wait_for(ready: bool) -> None:
        deadline = time.monotonic() + 45
        pending = list(pods)
        while pending and time.monotonic() < deadline:
            for pod in list(pending):
                problem = await k8s.run_probe(pod, pod.container["readinessProbe"])
                if (problem is None) == ready:
                    pending.remove(pod)
            await asyncio.sleep(0.5)
        assert not pending, dep.failure(f"{[p.name for p in pending]} not {'ready' if ready else 'unready'}")

    await pg.interrupt()
    try:
        await wait_for(ready=False)
        for pod in pods:
            problem = await k8s.run_probe(pod, pod.container["livenessProbe"])
            assert problem is None, dep.failure(f"{pod.name} would be restarted during the outage: {problem}")
    finally:
        await pg.resume()
    await wait_for(ready=True)
    for pod in pods:
        exited = dep.kubelet.exited(pod) if dep.kubelet else None
        assert exited is None, dep.failure(exited or "")


async def gateway_stays_ready_without_its_peers(dep: Deployment) -> None:
    """Readiness is the gateway's own database only: with the session pods gone, webhooks still land in the
    inbox, so the gateway must stay in the load balancer (kubelet's readinessProbe keeps passing)."""
    assert dep.kubelet is not None
    for pod in dep.pods_of("Deployment"):
        if pod.owner == "Deployment/paygate-session":
            problem = await stop_pod(dep.kubelet, pod)
            assert problem is None, dep.failure(problem or "")
    (gateway,) = [p for p in dep.pods_of("Deployment") if p.owner == "Deployment/paygate-gateway"]
    probe = gateway.container["readinessProbe"]
    for _ in range(3):
        problem = await k8s.run_probe(gateway, probe)
        assert problem is None, dep.failure(f"gateway not ready without session: {problem}")
        await asyncio.sleep(0.2)


async def stop_pod(kubelet: k8s.Kubelet, pod: k8s.Pod) -> str | None:
    """Pod deletion as kubelet does it: out of the endpoints, the preStop hook, then SIGTERM; the hook's time
    counts against terminationGracePeriodSeconds. The container must exit 0 within the grace period."""
    grace = float(pod.spec.get("terminationGracePeriodSeconds", 30))
    started = time.monotonic()
    pod.ready = False
    pre_stop = pod.container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        await asyncio.sleep(pre_stop["sleep"]["seconds"])
    elif pre_stop:
        return f"{pod.name}: unsupported preStop hook {pre_stop}"
    remaining = grace - (time.monotonic() - started)
    codes = await asyncio.to_thread(kubelet.stop, pod, max(remaining, 1.0))
    if any(code != 0 for code in codes):
        return f"{pod.name} exit codes after SIGTERM (None: killed after the grace period): {codes}\n{pod.log_tail(800)}"
    return None


async def stop_everything(dep: Deployment) -> list[str]:
    """Delete every pod; each must exit 0 within its terminationGracePeriodSeconds."""
    for task in dep.tasks:
        task.cancel()
    await asyncio.gather(*dep.tasks, return_exceptions=True)
    problems: list[str] = []
    if dep.kubelet is not None:
        kubelet = dep.kubelet
        results = await asyncio.gather(*(stop_pod(kubelet, pod) for pod in dep.pods_of("Deployment")))
        problems += [r for r in results if r]
        for pod in dep.pods_of("Job"):
            await asyncio.to_thread(kubelet.stop, pod, 5)
    for proxy in dep.proxies.values():
        await proxy.stop()
    for pg in dep.postgres:
        await pg.stop()
    return problems


@pytest.fixture
async def workspace() -> AsyncIterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="paygate-kubelet-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rendered(overlay: str) -> list[dict[str, Any]]:
    try:
        return check_deploy.build_overlay(overlay)
    except check_deploy.KubectlMissingError as exc:
        pytest.fail(str(exc))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_namespaced_object_renders_into_the_paygate_namespace(overlay: str) -> None:
    wrong = [
        f"{check_deploy.object_name(o)} -> {k8s.namespace_of(o)}"
        for o in rendered(overlay)
        if k8s.namespace_of(o) not in (None, NAMESPACE)
    ]
    assert wrong == [], f"`kubectl apply -k` would put these outside {NAMESPACE}: {wrong}"


@pytest.mark.parametrize("overlay", OVERLAYS)
async def test_overlay_deploys_as_documented_and_takes_a_payment(overlay: str, workspace: Path) -> None:
    dep = Deployment(overlay, workspace)
    async with AsyncExitStack() as stack:
        problems: list[str] = []

        async def teardown() -> None:
            problems.extend(await stop_everything(dep))

        stack.push_async_callback(teardown)
        await deploy(dep, rendered(overlay))
        plan_pods(dep)
        if overlay == "dev":
            # As `kubectl apply -k` does it: the Deployments start with the Jobs and wait for them.
            await pods_wait_for_their_schema(dep)
            await run_jobs(dep)
            await start_deployments(dep, launched=True)
        else:
            # As the docs order it: the Jobs complete, then the rollout.
            await run_jobs(dep)
            await start_deployments(dep)
        await take_a_payment(dep)
        if overlay == "dev":  # once is enough: the behaviour is the services', not the overlay's
            await a_database_outage_takes_pods_out_of_service_without_restarts(dep)
        await gateway_stays_ready_without_its_peers(dep)
    assert problems == [], dep.failure("\n".join(problems))


def test_the_image_runs_paygate_serve_and_the_pods_pick_the_service() -> None:
    image = k8s.parse_dockerfile()
    assert image.entrypoint == ["paygate", "serve"]
    assert os.path.isabs(image.workdir)


def _pod_templates(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o["spec"]["template"] for o in objects if o["kind"] in ("Deployment", "Job")]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_what_the_objects_name_exists(overlay: str) -> None:
    """The names one object gives another resolve as the controllers would look them up: Service ports and
    selectors, Ingress and HTTPRoute backends, PodMonitor ports, the ScheduledBackup's Cluster."""
    objects = rendered(overlay)
    store = k8s.Store()
    for obj in objects:
        store.apply(obj)
    templates = _pod_templates(objects)

    def ports_of(selector: dict[str, str]) -> set[str | int]:
        found: set[str | int] = set()
        for t in templates:
            if k8s.selects(selector, t["metadata"].get("labels", {})):
                for c in t["spec"]["containers"]:
                    for p in c.get("ports", []):
                        found |= {p["containerPort"], p.get("name", "")}
        return found

    for svc in store.of_kind("Service"):
        ports = ports_of(svc["spec"]["selector"])
        assert ports, f"Service {svc['metadata']['name']} selects no pod"
        for port in svc["spec"]["ports"]:
            assert port.get("targetPort", port["port"]) in ports, (svc["metadata"]["name"], port)
    for ingress in store.of_kind("Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                svc = store.get("Service", NAMESPACE, backend["name"])
                assert svc is not None and backend["port"]["name"] in {
                    p["name"] for p in svc["spec"]["ports"]
                }
                assert path["path"] not in ("/", "/healthz", "/readyz", "/metrics"), "only public routes"
    for route in store.of_kind("HTTPRoute"):
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                svc = store.get("Service", NAMESPACE, ref["name"])
                assert svc is not None and ref["port"] in {p["port"] for p in svc["spec"]["ports"]}
            assert {m["path"]["value"] for m in rule["matches"]} == {
                p["path"]
                for i in store.of_kind("Ingress")
                for r in i["spec"]["rules"]
                for p in r["http"]["paths"]
            }, "the HTTPRoute exposes exactly the Ingress's public paths"
    for monitor in store.of_kind("PodMonitor"):
        if "paygate-db" in monitor["metadata"]["name"]:
            continue  # CNPG's instance pods, made by the operator, name their exporter port `metrics`
        ports = ports_of(monitor["spec"]["selector"].get("matchLabels", {}))
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert endpoint["port"] in ports, endpoint
    for backup in store.of_kind("ScheduledBackup"):
        assert store.get("Cluster", k8s.namespace_of(backup), backup["spec"]["cluster"]["name"]) is not None


def _required_secrets(template: dict[str, Any]) -> set[str]:
    """The Secrets a pod cannot start without: volumes, envFrom and env references not marked optional."""
    spec = template["spec"]
    names = {
        v["secret"]["secretName"]
        for v in spec.get("volumes", [])
        if "secret" in v and not v["secret"].get("optional", False)
    }
    for container in [*spec.get("initContainers", []), *spec["containers"]]:
        for source in container.get("envFrom", []):
            ref = source.get("secretRef")
            if ref and not ref.get("optional", False):
                names.add(ref["name"])
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref and not ref.get("optional", False):
                names.add(ref["name"])
    return names


@pytest.mark.parametrize(
    ("overlay", "flags"),
    [
        ("dev", ()),
        ("prod", ()),
        ("external-db", ("--db-host", EXTERNAL_DB_HOST, "--db-ca-file", "{ca}")),
        # Offered by `secrets generate --help`: encrypted, the server's certificate not verified, no CA.
        ("external-db", ("--db-host", EXTERNAL_DB_HOST, "--db-sslmode-require")),
    ],
)
def test_every_secret_a_pod_needs_is_made_by_the_generator_or_a_controller(
    overlay: str, flags: tuple[str, ...], tmp_path: Path
) -> None:
    """With `--db-sslmode-require` the generator makes no `paygate-db-ca`, and every pod and Job of the
    external-db overlay mounted it as required: nothing would have started."""
    ca = TestCA(tmp_path / "ca")
    argv = [a.replace("{ca}", str(ca.ca_file)) for a in flags]
    result = subprocess.run(
        [str(Path(sys.prefix) / "bin" / "paygate"), "secrets", "generate", "--overlay", overlay, *argv,
         "--role-sql", str(tmp_path / "roles.sql")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    made = {d["metadata"]["name"] for d in k8s.load_yaml_documents(result.stdout)}
    objects = rendered(overlay)
    # cert-manager writes each Certificate's Secret; CloudNativePG its Cluster's CA (`<cluster>-ca`).
    made |= {o["spec"]["secretName"] for o in objects if o["kind"] == "Certificate"}
    made |= {f"{o['metadata']['name']}-ca" for o in objects if o["kind"] == "Cluster"}
    missing = {
        f"{o['kind']}/{o['metadata']['name']}: {name}"
        for o in objects
        if o["kind"] in ("Deployment", "Job")
        for name in _required_secrets(o["spec"]["template"])
        if name not in made
    }
    assert not missing, f"pods that would wait forever for a Secret nobody makes: {sorted(missing)}"
