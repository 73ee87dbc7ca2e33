"""The stack users run, measured from outside: `paygate up` as a subprocess, driven only through its public
interfaces, with the Stripe event shapes the project ships and a customer mail per session.

    .venv/bin/python bench/bench_stack.py [--sessions 3000] [--bursts 3] [--concurrency 64]
                                          [--py-spy DIR] [--keep-home]

What it does, in one run on one machine (durable commits, everything on the same cores):
1. starts `.venv/bin/paygate up` (embedded PostgreSQL, the four services, the SMTP sink, the One.com double)
   with its own PAYGATE_HOME in a temp dir and free ports, and reads stack.json;
2. per burst, N sessions created with `POST /v1/sessions` (merchant key from stack.json, provider stripe,
   `customer_email` set so that fulfilment sends a mail) and N signed `checkout.session.completed` events
   built from the Stripe shapes the project ships (devtools/stripe_shapes/);
3. the ceiling the webhook reply rate is judged against: an aiohttp hello-world POST server (own process, same
   body size, same client) at the webhook concurrency, measured twice per burst, right before the events are
   sent and again once the burst is fulfilled, each time with the stack idle. This machine's speed drifts
   within minutes, so the ratio is taken against the faster of the two (the stricter judgement);
4. then the N events POSTed at the concurrency,
   timed until every mail is in the SMTP sink's folder (a mail is queued only once invoice, key and link are
   recorded) while two pollers ask `GET /v1/sessions/{id}` gently (about 20 GETs/s in all), as a merchant's
   backend would; every session's invoice, key and link is then confirmed over the same API, untimed. It
   prints fulfilled sessions/s, the webhook reply rate and p50/p99 (over the sending window; the gateway
   applies a burst's events once they have been due for PAYGATE_WEBHOOK_BUSY_DEFER_MS, 1 s, so a burst sent
   faster than that is answered with little fulfilment behind it, and a longer one, `--sessions 9000`, with
   the relay's paced applies running), each process's cores busy and CPU per reply over that window, the
   CPU per fulfilled session of every process (psutil user + system: up's children, `up` itself with the
   SMTP sink and One.com double, and this stack's PostgreSQL processes, found through its postmaster.pid)
   and each process's resident size after the burst (PostgreSQL as the sum of its processes' unique memory);
5. `VerifyKey` at c=4 against an empty grpc.aio call (bench/baseline.py), on the stack's keys service.

`--py-spy DIR` records a speedscope profile of every service during the first burst (py-spy, dev dependency).
The goals printed are issue 16's: >= 200 fulfilled/s, webhook replies >= 35 % of hello-world with p99 < 100 ms
at c=64 while fulfilment runs, VerifyKey >= 60 % of an empty call with p99 < 5 ms at c=4, no service's memory
growing burst on burst. "While fulfilment runs" is read from outside: the reply ratio is judged only on bursts
with at least one customer mail in the sink by the last reply, and a run whose bursts all ended first says
that it could not judge it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from baseline import Figures, empty_unary_baseline, figures_from, free_port, measure
from bench_keys import _issue_keys, _verifier

from paygate.keys.v1 import keys_pb2_grpc
from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event

ROOT = Path(__file__).resolve().parent.parent
PAYGATE = ROOT / ".venv" / "bin" / "paygate"
PY_SPY = ROOT / ".venv" / "bin" / "py-spy"
REQUEST_TIMEOUT_S = 30.0
CREATE_CONCURRENCY = 16
POLLERS = 2
POLL_PAUSE_S = 0.1  # each poller's pause between GETs: 2 pollers ask about 20 times a second in all
FULFIL_LIMIT_S = 600.0
AMOUNT = "9.99"
AMOUNT_MINOR = 999
CURRENCY = "EUR"

HELLO_SERVER = """
import sys
from aiohttp import web
async def hello(request):
    await request.read()
    return web.json_response({"received": True, "event_id": "evt_hello", "duplicate": False})
app = web.Application(client_max_size=1024 * 1024)
app.router.add_post("/webhooks/stripe", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


# --- the stack -------------------------------------------------------------------------------------------


@dataclass
class RunningStack:
    home: Path
    proc: subprocess.Popen[bytes]
    facts: dict[str, Any]

    @property
    def url(self) -> str:
        return str(self.facts["gateway_url"])

    @property
    def api_key(self) -> str:
        return str(self.facts["merchant"]["api_key"])

    @property
    def mail_dir(self) -> Path:
        return Path(self.facts["mail_dir"])

    def postgres_pids(self) -> list[int]:
        """The stack's own PostgreSQL: its postmaster (first line of postmaster.pid) and every backend."""
        pid_file = self.home / "pgdata" / "postmaster.pid"
        try:
            postmaster = int(pid_file.read_text().splitlines()[0])
            parent = psutil.Process(postmaster)
            return [postmaster, *(child.pid for child in parent.children(recursive=True))]
        except (OSError, ValueError, IndexError, psutil.Error):
            return []

    def processes(self) -> dict[str, list[int]]:
        named = {f"{name} service": [pid] for name, pid in self.facts["pids"].items()}
        named["paygate up (SMTP sink, One.com double)"] = [self.proc.pid]
        named["postgresql (this stack)"] = self.postgres_pids()
        return named


@contextlib.asynccontextmanager
async def paygate_up(keep_home: bool):
    home = Path(tempfile.mkdtemp(prefix="bench-stack-"))
    ports = [free_port() for _ in range(5)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(home)
    # What a user who follows README gets: no tuning variables at all.
    for name in ("PAYGATE_LOG_LEVEL", "PAYGATE_DB_POOL_MAX", "PAYGATE_SESSION_WORKERS"):
        if name in os.environ:
            env[name] = os.environ[name]
    args = [
        str(PAYGATE), "up", "--home", str(home),
        "--http-port", str(ports[0]), "--session-port", str(ports[1]), "--billing-port", str(ports[2]),
        "--keys-port", str(ports[3]), "--smtp-port", str(ports[4]),
    ]  # fmt: skip
    log = open(home / "up.out", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack_file = home / "stack.json"
    try:
        deadline = time.monotonic() + 180
        while not stack_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"paygate up did not start:\n{(home / 'up.out').read_text(errors='replace')}"
                )
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)  # written atomically, but give it a beat
        yield RunningStack(home, proc, json.loads(stack_file.read_text()))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
        if keep_home:
            print(f"(kept {home})")
        else:
            subprocess.run(["rm", "-rf", str(home)], check=False)


# --- CPU and memory --------------------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


@dataclass
class StackCpu:
    stack: RunningStack
    before: dict[str, float] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        # PostgreSQL backends come and go (pools grow), so its pids are read again at every sample; a
        # backend that exited between samples loses its CPU from the sum (pools keep theirs for the run).
        now = {label: _cpu_seconds(pids) for label, pids in self.stack.processes().items()}
        now["benchmark client"] = _cpu_seconds([os.getpid()])
        return now

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> None:
        after = self._now()
        for label, seconds in after.items():
            self.spent[label] = self.spent.get(label, 0.0) + seconds - self.before.get(label, 0.0)


async def deadlocks(stack: RunningStack) -> int:
    """Deadlocks PostgreSQL has detected in the stack's database so far (pg_stat_database). Each one costs a
    `deadlock_timeout` (1 s) stall and a retry of the losing statement; a burst should make none."""
    conn = await asyncpg.connect(stack.facts["database_url"])
    try:
        return int(
            await conn.fetchval("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    finally:
        await conn.close()


def resident_mb(stack: RunningStack) -> dict[str, float]:
    """Resident MB per process; PostgreSQL as the sum of its processes' unique memory (USS), since every
    backend's RSS counts the same shared buffers again."""
    sizes = {}
    for label, pids in stack.processes().items():
        total = 0
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                total += (
                    process.memory_full_info().uss
                    if label.startswith("postgresql")
                    else process.memory_info().rss
                )
        sizes[label] = total / 1e6
    return sizes


# --- load ------------------------------------------------------------------------------------------------


def _client(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def hello_world(body: bytes, concurrency: int, seconds: float) -> Figures:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", HELLO_SERVER, str(port)], stdout=subprocess.DEVNULL)
    try:
        await _wait_port(port, proc)
        url = f"http://127.0.0.1:{port}/webhooks/stripe"
        headers = {"Content-Type": "application/json"}
        async with _client(concurrency) as http:

            async def call() -> None:
                async with http.post(url, data=body, headers=headers) as response:
                    await response.read()

            return await measure(call, concurrency, seconds)
    finally:
        proc.terminate()
        proc.wait()


async def create_sessions(stack: RunningStack, count: int, burst: int) -> tuple[list[str], float]:
    """N sessions over `POST /v1/sessions`, as a merchant's backend creates them; (ids, seconds taken)."""
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    ids: list[str] = []
    numbers = iter(range(count))
    async with _client(CREATE_CONCURRENCY) as http:

        async def worker() -> None:
            for n in numbers:
                body = {
                    "amount": AMOUNT,
                    "currency": CURRENCY,
                    "provider": "stripe",
                    "customer_email": f"buyer-{burst}-{n}@example.com",
                    "metadata": {"order": f"B{burst}-{n}"},
                }
                async with http.post(f"{stack.url}/v1/sessions", json=body, headers=headers) as response:
                    reply = await response.json()
                    if response.status != 201:
                        raise RuntimeError(f"POST /v1/sessions answered {response.status}: {reply}")
                    ids.append(reply["id"])

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CREATE_CONCURRENCY)))
        return ids, time.perf_counter() - begin


def signed_events(stack: RunningStack, session_ids: list[str]) -> list[tuple[bytes, dict[str, str]]]:
    secret = stack.facts["webhook_secrets"]["stripe"]
    now = int(time.time())
    return [
        stripe_delivery(
            build_stripe_event("checkout.session.completed", sid, AMOUNT_MINOR, CURRENCY), secret, now
        )
        for sid in session_ids
    ]


def _mails(folder: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(folder) if entry.name.endswith(".eml"))
    except FileNotFoundError:
        return 0


@dataclass
class Burst:
    sessions: int
    create_s: float
    fulfil_s: float
    replies: Figures
    cpu: dict[str, float]
    rss_mb: dict[str, float]
    polls: int
    mails: int
    # CPU seconds per process while the webhooks were being sent (the window the reply figures cover).
    sending_cpu: dict[str, float] = field(default_factory=dict)
    # Sessions whose mail was in the sink when the last reply came back: fulfilment that ran inside the window.
    fulfilled_while_sending: int = 0

    @property
    def fulfilled_per_s(self) -> float:
        return self.sessions / self.fulfil_s


@dataclass
class Prepared:
    """A burst's sessions, created over the API, and their signed webhooks, not yet sent."""

    ids: list[str]
    create_s: float
    deliveries: list[tuple[bytes, dict[str, str]]]


async def prepare(stack: RunningStack, count: int, number: int) -> Prepared:
    ids, create_s = await create_sessions(stack, count, number)
    return Prepared(ids, create_s, signed_events(stack, ids))


async def burst(
    stack: RunningStack, prepared: Prepared, number: int, concurrency: int, profile_dir: Path | None
) -> Burst:
    ids, create_s, deliveries = prepared.ids, prepared.create_s, prepared.deliveries
    count = len(ids)
    mails_before = _mails(stack.mail_dir)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    meter = StackCpu(stack)
    profilers = _start_py_spy(stack, profile_dir, number) if profile_dir else []
    latencies: list[float] = []
    polls = 0
    unconfirmed = collections.deque(ids)
    meter.start()
    begin = time.perf_counter()
    async with _client(concurrency) as http, _client(POLLERS) as poll_http:
        pending = iter(deliveries)

        async def sender() -> None:
            for raw, hdrs in pending:
                started = time.perf_counter()
                async with http.post(f"{stack.url}/webhooks/stripe", data=raw, headers=hdrs) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"webhook answered {response.status}")
                latencies.append(time.perf_counter() - started)

        sending = True

        async def poller() -> None:
            """A merchant's backend asking after its orders, gently: one GET per POLL_PAUSE_S per poller,
            each time on the oldest session it has not yet seen fulfilled. The clock stops when the last mail
            is in the sink (a mail is queued only once invoice, key and link are recorded); every session's
            invoice, key and link are then confirmed over the same API, outside the timed window.

            The sink is not counted while the webhooks are being sent: counting is the benchmark's own
            bookkeeping, not a merchant's load, and it lists a folder that holds every mail of the run (3.4 ms
            at 9,000 files, 6.8 ms at 18,000, on this project's VM), twenty times a second, on the event loop
            the 64 senders share. That stalled the senders for 7-14 % of the window and made every burst after
            the first look slower than it was."""
            nonlocal polls
            while sending or _mails(stack.mail_dir) - mails_before < count:
                if time.perf_counter() - begin > FULFIL_LIMIT_S:
                    raise RuntimeError(
                        f"only {_mails(stack.mail_dir) - mails_before} of {count} mails arrived"
                    )
                if unconfirmed:
                    sid = unconfirmed[0]
                    polls += 1
                    if (
                        await _fulfilled(poll_http, stack, sid, headers)
                        and unconfirmed
                        and unconfirmed[0] == sid
                    ):
                        unconfirmed.popleft()
                await asyncio.sleep(POLL_PAUSE_S)

        sending_meter = StackCpu(stack)
        sending_meter.start()
        while_sending = 0

        async def send_all() -> float:
            nonlocal while_sending, sending
            await asyncio.gather(*(sender() for _ in range(concurrency)))
            sent = time.perf_counter()
            sending_meter.stop()
            while_sending = _mails(stack.mail_dir) - mails_before
            sending = False
            return sent

        sent, *_ = await asyncio.gather(send_all(), *(poller() for _ in range(POLLERS)))
        sent_at = float(sent or begin)
    fulfil_s = time.perf_counter() - begin
    meter.stop()
    missing = await _confirm_fulfilled(stack, list(unconfirmed), headers)
    if missing:
        raise RuntimeError(
            f"{len(missing)} sessions have a mail but no invoice, key or link, e.g. {missing[:3]}"
        )
    for proc in profilers:
        proc.send_signal(signal.SIGINT)
    for proc in profilers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(30)
    # Replies are judged over the sending window only (fulfilment runs meanwhile and after).
    replies = figures_from(latencies, sent_at - begin)
    await asyncio.sleep(1.0)  # let pools and queues settle before reading resident sizes
    return Burst(
        count, create_s, fulfil_s, replies, meter.spent, resident_mb(stack), polls,
        _mails(stack.mail_dir) - mails_before, sending_meter.spent, while_sending,
    )  # fmt: skip


async def _fulfilled(
    http: aiohttp.ClientSession, stack: RunningStack, sid: str, headers: dict[str, str]
) -> bool:
    async with http.get(f"{stack.url}/v1/sessions/{sid}", headers=headers) as response:
        detail = await response.json()
    if response.status != 200:
        raise RuntimeError(f"GET /v1/sessions/{sid} answered {response.status}: {detail}")
    return bool(detail.get("invoice_id") and detail.get("api_key_id") and detail.get("access_url"))


async def _confirm_fulfilled(stack: RunningStack, ids: list[str], headers: dict[str, str]) -> list[str]:
    """The sessions among `ids` that do not show invoice, key and link over GET /v1/sessions/{id}."""
    missing: list[str] = []
    pending = iter(ids)
    async with _client(8) as http:

        async def worker() -> None:
            for sid in pending:
                if not await _fulfilled(http, stack, sid, headers):
                    missing.append(sid)

        await asyncio.gather(*(worker() for _ in range(8)))
    return missing


def _start_py_spy(stack: RunningStack, folder: Path, number: int) -> list[subprocess.Popen[bytes]]:
    if number != 1:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    procs = []
    for name, pid in stack.facts["pids"].items():
        out = folder / f"{name}.speedscope.json"
        procs.append(
            subprocess.Popen(
                [
                    str(PY_SPY),
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "speedscope",
                    "--rate",
                    "50",
                    "--nonblocking",
                    "-o",
                    str(out),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    return procs


async def verify_key_figures(stack: RunningStack, seconds: float, rounds: int) -> tuple[Figures, Figures]:
    """VerifyKey at c=4 on the stack's keys service next to an empty grpc.aio call, interleaved; the round
    with the median ratio."""
    async with grpc.aio.insecure_channel(stack.facts["grpc"]["keys"]) as channel:
        stub = keys_pb2_grpc.KeysServiceStub(channel)
        secrets = await _issue_keys(stub, 100)
        await measure(_verifier(stub, secrets), 4, 1.0)
        pairs = []
        for _ in range(rounds):
            verify = await measure(_verifier(stub, secrets), 4, seconds)
            empty = await empty_unary_baseline(4, seconds)
            pairs.append((verify, empty))
    pairs.sort(key=lambda pair: pair[0].rate_per_s / max(pair[1].rate_per_s, 1e-9))
    return pairs[len(pairs) // 2]


# --- report ----------------------------------------------------------------------------------------------


def _line(figures: Figures, label: str) -> str:
    return (
        f"  {label:<44} {figures.rate_per_s:8.0f}/s   p50 {figures.p50_ms:6.2f} ms   "
        f"p99 {figures.p99_ms:6.2f} ms   n={figures.count}"
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3000, help="sessions per burst")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64, help="webhook POST concurrency")
    parser.add_argument(
        "--seconds", type=float, default=3.0, help="seconds per hello-world / VerifyKey round"
    )
    parser.add_argument("--py-spy", type=Path, metavar="DIR", help="speedscope profiles of burst 1 here")
    parser.add_argument("--keep-home", action="store_true", help="keep PAYGATE_HOME (logs, mail) afterwards")
    args = parser.parse_args()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"paygate up, measured from outside: {os.cpu_count()} cores, load {load}; {args.bursts} bursts of "
        f"{args.sessions} sessions, webhooks at c={args.concurrency}"
    )
    async with paygate_up(args.keep_home) as stack:
        sample = signed_events(stack, ["00000000-0000-4000-8000-000000000000"])[0][0]
        bursts: list[Burst] = []
        hellos: list[Figures] = []
        print(f"aiohttp hello-world POST: {len(sample)}-byte Stripe checkout.session.completed body")
        for number in range(1, args.bursts + 1):
            prepared = await prepare(stack, args.sessions, number)
            print(
                f"burst {number}: {len(prepared.ids)} sessions created over POST /v1/sessions in "
                f"{prepared.create_s:.1f} s ({len(prepared.ids) / prepared.create_s:.0f}/s at c={CREATE_CONCURRENCY})"
            )
            # The ceiling right before the events go out and again once they are fulfilled, the stack idle
            # both times: this machine's speed drifts within minutes. Judged against the faster of the two.
            before = await hello_world(sample, args.concurrency, args.seconds)
            print(_line(before, f"hello-world, c={args.concurrency}, right before"))
            deadlocks_before = await deadlocks(stack)
            result = await burst(stack, prepared, number, args.concurrency, args.py_spy)
            bursts.append(result)
            print(
                f"  deadlocks PostgreSQL detected during the burst: {await deadlocks(stack) - deadlocks_before}"
            )
            after = await hello_world(sample, args.concurrency, args.seconds)
            print(_line(after, f"hello-world, c={args.concurrency}, once fulfilled"))
            hello = max(before, after, key=lambda figures: figures.rate_per_s)
            hellos.append(hello)
            ratio = result.replies.rate_per_s / hello.rate_per_s if hello.rate_per_s else 0.0
            print(
                _line(
                    result.replies,
                    f"webhook replies c={args.concurrency} ({100 * ratio:.0f} % of the faster hello)",
                )
            )
            window = result.replies.count / max(result.replies.rate_per_s, 1e-9)
            # Busiest process first, each by its short name ("gateway service", not its parenthesis).
            sending = [
                (label.split(" (")[0], spent)
                for label, spent in sorted(result.sending_cpu.items(), key=lambda kv: -kv[1])
            ]
            print(
                f"  cores busy while sending ({window:.2f} s): "
                + ", ".join(f"{name} {spent / window:.2f}" for name, spent in sending)
                + f"; total {sum(result.sending_cpu.values()) / window:.2f}"
            )
            print(
                f"  fulfilled while sending: {result.fulfilled_while_sending} sessions (mails in the sink at the last reply)"
            )
            # The same window per reply: what one webhook costs each process while the replies go out.
            print(
                "  CPU per reply while sending: "
                + ", ".join(
                    f"{name} {1000 * spent / result.replies.count:.3f} ms"
                    for name, spent in sending
                    if spent / window >= 0.05
                )
            )
            print(
                f"  {'webhook -> fulfilled (invoice, key, link, mail)':<44} {result.fulfilled_per_s:8.0f}/s   "
                f"{result.sessions} in {result.fulfil_s:.1f} s; {result.mails} mails; {result.polls} GETs polled"
            )
            print("  CPU per fulfilled session (psutil user + system):")
            for label, spent in sorted(result.cpu.items(), key=lambda kv: kv[1], reverse=True):
                print(f"    {1000 * spent / result.sessions:6.2f} ms  {label}")
            print(f"    {1000 * sum(result.cpu.values()) / result.sessions:6.2f} ms  total")
            print("  resident size after the burst: " + ", ".join(
                f"{label.split(' (')[0]} {mb:.0f} MB" for label, mb in result.rss_mb.items()
            ))  # fmt: skip
        verify, empty = await verify_key_figures(stack, args.seconds, 3)
    print("VerifyKey on the stack's keys service (100 hot customer keys; median of 3 interleaved rounds)")
    print(_line(verify, "VerifyKey c=4"))
    print(_line(empty, "empty grpc.aio unary c=4"))

    rates = [b.fulfilled_per_s for b in bursts]
    ratios = [b.replies.rate_per_s / max(h.rate_per_s, 1e-9) for b, h in zip(bursts, hellos, strict=True)]
    p99s = [b.replies.p99_ms for b in bursts]
    verify_ratio = verify.rate_per_s / empty.rate_per_s if empty.rate_per_s else 0.0
    first, last = bursts[0].rss_mb, bursts[-1].rss_mb
    growth = {label: last[label] - first[label] for label in first if label in last}
    print("summary (issue 16 goals; median over bursts)")
    print(
        f"  fulfilled sessions/s           {statistics.median(rates):6.0f}   bursts {', '.join(f'{r:.0f}' for r in rates)}"
        f"   (goal >= 200: {_verdict(statistics.median(rates) >= 200)})"
    )
    print(
        f"  webhook replies / hello-world  {100 * statistics.median(ratios):5.0f} %   bursts "
        f"{', '.join(f'{100 * r:.0f}' for r in ratios)} %   (goal >= 35 % while fulfilment runs: "
        f"{_ratio_verdict(bursts, ratios)})"
    )
    print(
        f"  webhook p99 at c={args.concurrency}           {statistics.median(p99s):6.1f} ms   bursts "
        f"{', '.join(f'{p:.0f}' for p in p99s)} ms   (goal < 100 ms: {_verdict(statistics.median(p99s) < 100)})"
    )
    print(
        f"  VerifyKey / empty call at c=4  {100 * verify_ratio:5.0f} %   p99 {verify.p99_ms:.2f} ms   (goal >= 60 %, "
        f"p99 < 5 ms: {_verdict(verify_ratio >= 0.6 and verify.p99_ms < 5)})"
    )
    cpu_total = statistics.median(1000 * sum(b.cpu.values()) / b.sessions for b in bursts)
    print(f"  CPU per fulfilled session      {cpu_total:6.2f} ms (all processes, median burst)")
    print(
        "  resident size, first -> last burst: "
        + ", ".join(f"{label.split(' (')[0]} {first[label]:.0f}->{last[label]:.0f} MB" for label in growth)
    )


def _ratio_verdict(bursts: list[Burst], ratios: list[float]) -> str:
    """Issue 16 asks for the reply ratio *while fulfilment runs*: judged on the bursts inside whose sending
    window at least one session was fulfilled; a burst sent inside the busy deferral has none."""
    running = [ratio for b, ratio in zip(bursts, ratios, strict=True) if b.fulfilled_while_sending > 0]
    if not running:
        return (
            "not judged: no session was fulfilled while sending; a longer burst (--sessions 9000) measures it"
        )
    median = statistics.median(running)
    return f"{_verdict(median >= 0.35)}, {100 * median:.0f} % over the {len(running)} of {len(bursts)} bursts with fulfilment inside"


if __name__ == "__main__":
    asyncio.run(main())
