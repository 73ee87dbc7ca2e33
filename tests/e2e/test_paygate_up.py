"""`paygate up` as a person runs it: a subprocess with its own PAYGATE_HOME and embedded PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from paygate_dev.devtools.signing import stripe_delivery
from paygate_dev.devtools.stripe_fixtures import build_stripe_event
from support.stack import free_ports

pytestmark = pytest.mark.slow


def _start(home: Path, ports: list[int]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(home)
    http, session, billing, keys, smtp = ports
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "paygate_runtime.cli.main",
            "up",
            "--http-port",
            str(http),
            "--session-port",
            str(session),
            "--billing-port",
            str(billing),
            "--keys-port",
            str(keys),
            "--smtp-port",
            str(smtp),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for_stack(home: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    stack_file = home / "stack.json"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"paygate up exited early:\n{proc.stdout.read().decode()}")
        if stack_file.exists():
            return json.loads(stack_file.read_text())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no stack.json within {timeout}s:\n{proc.stdout.read().decode()}")


def _stop(proc: subprocess.Popen[bytes], sig: int) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(timeout=15)
    return time.monotonic() - started


def test_up_serves_sessions_and_keeps_data_across_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ports = free_ports(5)
    proc = _start(home, ports)
    try:
        stack = _wait_for_stack(home, proc)
        assert stack["gateway_url"] == f"http://127.0.0.1:{ports[0]}"
        assert set(stack["pids"]) == {"session", "billing", "keys", "gateway"}
        assert stack["merchant"]["api_key"].startswith("sk_test_")
        assert oct((home / "dev_merchant.json").stat().st_mode & 0o777) == "0o600"
        headers = {"X-API-Key": stack["merchant"]["api_key"]}
        created = requests.post(
            f"{stack['gateway_url']}/v1/sessions",
            json={"amount": 99.99, "mode": "test"},
            headers=headers,
            timeout=10,
        )
        assert created.status_code == 201, created.text
        session_id = created.json()["id"]
        _pay_and_check_metrics(stack, created.json(), headers)
        # `paygate merchant create` finds the running stack and prints a new secret key once.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
        made = subprocess.run(
            [sys.executable, "-m", "paygate_runtime.cli.main", "merchant", "create", "--name", "Corner Shop"],
            env={**env, "PAYGATE_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert made.returncode == 0, made.stderr
        [new_key] = [line.split()[-1] for line in made.stdout.splitlines() if line.startswith("secret key")]
        assert new_key.startswith("sk_test_") and new_key != stack["merchant"]["api_key"]
        other = requests.post(
            f"{stack['gateway_url']}/v1/sessions",
            json={"amount": "5.00"},
            headers={"X-API-Key": new_key},
            timeout=10,
        )
        assert other.status_code == 201, other.text
    finally:
        elapsed = _stop(proc, signal.SIGINT)
    assert proc.returncode == 0, proc.stdout.read().decode()
    assert elapsed < 10
    assert not (home / "stack.json").exists()

    proc = _start(home, ports)
    try:
        again = _wait_for_stack(home, proc)
        assert again["merchant"] == stack["merchant"]  # the same dev merchant and key after a restart
        fetched = requests.get(
            f"{again['gateway_url']}/v1/sessions/{session_id}",
            headers={"X-API-Key": again["merchant"]["api_key"]},
            timeout=10,
        )
        assert fetched.status_code == 200 and fetched.json()["amount"] == "99.99"
        # A child that dies is named, and `up` stops the rest and exits non-zero.
        os.kill(again["pids"]["billing"], signal.SIGKILL)
        proc.wait(timeout=20)
        output = proc.stdout.read().decode()
        assert proc.returncode != 0
        assert "service billing exited" in output
    finally:
        if proc.poll() is None:
            _stop(proc, signal.SIGTERM)


def _pay_and_check_metrics(stack: dict, session: dict, headers: dict[str, str]) -> None:
    """Pay the session with a signed webhook, wait for fulfilment, then read every service's /metrics on the
    port stack.json names: RPC figures on each gRPC service, none on the gateway's public port."""
    event = build_stripe_event("payment_intent.succeeded", session["id"], session["amount_minor"], "EUR")
    raw, signed = stripe_delivery(event, stack["webhook_secrets"]["stripe"], int(time.time()))
    delivered = requests.post(f"{stack['gateway_url']}/webhooks/stripe", data=raw, headers=signed, timeout=10)
    assert delivered.status_code == 200, delivered.text
    deadline = time.monotonic() + 60
    while True:
        body = requests.get(
            f"{stack['gateway_url']}/v1/sessions/{session['id']}", headers=headers, timeout=10
        )
        if body.json().get("invoice_id") and body.json().get("api_key_id"):
            break
        assert time.monotonic() < deadline, f"not fulfilled: {body.text}"
        time.sleep(0.2)

    assert set(stack["metrics"]) == {"gateway", "session", "billing", "keys"}
    pages = {}
    for service, url in stack["metrics"].items():
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        assert not url.startswith(stack["gateway_url"])
        reply = requests.get(url, timeout=10)
        assert reply.status_code == 200, (service, reply.text)
        pages[service] = reply.text
        assert f'paygate_db_pool_connections{{service="{service}",state="max"}}' in reply.text
        # Issue 16: `paygate up` holds each pool whole (PAYGATE_DB_POOL_MIN = the pool's size), so no burst
        # opens connections while it runs; from asyncpg's floor of 2 a single paid session opens few more.
        sizes = {
            line.split('state="')[1].split('"')[0]: float(line.rsplit(" ", 1)[1])
            for line in reply.text.splitlines()
            if line.startswith(f'paygate_db_pool_connections{{service="{service}",')
        }
        assert sizes["open"] == sizes["max"] == 10, (service, sizes)
    assert 'paygate_grpc_server_handled_total{code="OK",method="ApplyPaymentEvent"' in pages["session"]
    assert 'paygate_grpc_server_handling_seconds_count{method="CreateSession"' in pages["session"]
    for service in ("billing", "keys"):
        assert 'paygate_grpc_server_handled_total{code="OK"' in pages[service], pages[service]
    assert (
        'paygate_http_requests_total{method="POST",route="/webhooks/stripe",status="200"}' in pages["gateway"]
    )
    assert requests.get(f"{stack['gateway_url']}/metrics", timeout=10).status_code == 404


def test_sigterm_stops_within_ten_seconds(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = _start(home, free_ports(5))
    stack = _wait_for_stack(home, proc)
    elapsed = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert elapsed < 10
    for pid in stack["pids"].values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_")}
    env["PAYGATE_DATABASE_URL"] = "postgresql://x@/y"
    env["PAYGATE_GRPC_PORT"] = "not-a-port"
    result = subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "billing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PAYGATE_GRPC_PORT" in lines[0]
    env.pop("PAYGATE_DATABASE_URL")
    result = subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "serve", "keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "PAYGATE_DATABASE_URL" in result.stderr


def test_a_port_held_by_a_leftover_service_is_refused_before_anything_starts(tmp_path: Path) -> None:
    """A `paygate up` killed with SIGKILL leaves its services running on their ports. A new `up` on those ports
    must say so, not take the leftover's health answer for its own child's, announce "paygate is up" and write
    a stack.json of pids that are dying."""
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    home = tmp_path / "home"
    ports = free_ports(5)
    leftover = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), leftover)  # answers SERVING
    leftover.add_insecure_port(f"127.0.0.1:{ports[3]}")
    leftover.start()
    try:
        proc = _start(home, ports)
        try:
            output = proc.communicate(timeout=120)[0].decode()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    finally:
        leftover.stop(None)
    assert proc.returncode == 1, output
    assert f"127.0.0.1:{ports[3]} (keys) is already in use" in output, output
    assert "keys is healthy" not in output and "paygate is up" not in output, output
    assert "Traceback" not in output, output
    assert not (home / "stack.json").exists()
