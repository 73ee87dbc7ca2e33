"""`paygate up --chain` and `paygate pay` as a person runs them: subprocesses with their own PAYGATE_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from support.stack import free_ports

pytestmark = [pytest.mark.chain, pytest.mark.slow]


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(home)
    return env


def _up(home: Path, ports: list[int], log: Path) -> subprocess.Popen[bytes]:
    http, session, billing, keys, smtp, chain = ports
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "paygate_runtime.cli.main", "up", "--chain", "--chain-port", str(chain),
             "--http-port", str(http), "--session-port", str(session), "--billing-port", str(billing),
             "--keys-port", str(keys), "--smtp-port", str(smtp)],
            env=_env(home), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _wait_for_stack(
    home: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"paygate up exited early:\n{log.read_text(errors='replace')}")
        if (home / "stack.json").exists():
            return json.loads((home / "stack.json").read_text())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no stack.json within {timeout}s:\n{log.read_text(errors='replace')}")


def _rpc(url: str, method: str, params: list[Any] | None = None) -> Any:
    reply = requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}, timeout=5
    )
    return reply.json()["result"]


def _pay(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "paygate_runtime.cli.main", "pay", *args],
        env=_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _session(stack: dict[str, Any], session_id: str) -> dict[str, Any]:
    reply = requests.get(
        f"{stack['gateway_url']}/v1/sessions/{session_id}",
        headers={"X-API-Key": stack["merchant"]["api_key"]},
        timeout=5,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def _wait_paid(stack: dict[str, Any], session_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = _session(stack, session_id)
        if body["status"] == "paid":
            return body
        time.sleep(0.3)
    raise AssertionError(f"session {session_id} not paid: {body}")


def test_up_with_chain_pays_a_session_with_paygate_pay_and_keeps_the_chain(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "up.log"
    ports = free_ports(6)
    proc = _up(home, ports, log)
    try:
        stack = _wait_for_stack(home, proc, log)
        chain = stack["chain"]
        assert chain["chain_id"] == 31337 and chain["rpc_url"].endswith(f":{ports[5]}")
        assert int(_rpc(chain["rpc_url"], "eth_chainId"), 16) == 31337
        token = chain["token"]
        assert (
            token["symbol"] == "TUSD"
            and _rpc(chain["rpc_url"], "eth_getCode", [token["address"], "latest"]) != "0x"
        )

        created = requests.post(
            f"{stack['gateway_url']}/v1/sessions",
            json={"amount": "2.50", "currency": "TUSD", "provider": "web3"},
            headers={"X-API-Key": stack["merchant"]["api_key"]},
            timeout=10,
        )
        assert created.status_code == 201, created.text
        session = created.json()
        deposit = session["payment"]["deposit_address"]
        anvil_accounts = [a.lower() for a in _rpc(chain["rpc_url"], "eth_accounts")]
        assert deposit.lower() not in anvil_accounts  # derived from the dev mnemonic, not anvil's

        # `--mine 0`: the transfer alone, no block after it, so it stays short of the session's confirmations.
        short = _pay(home, "--session", session["id"], "--amount", "1", "--mine", "0")
        assert short.returncode == 0, short.stderr
        assert json.loads(short.stdout)["amount_minor"] == 1_000_000
        # As README shows it, with no --mine: a local node makes blocks only for transactions, so `pay` mines
        # what the session's confirmations still need, and the session is paid without anything else.
        paid = _pay(home, "--session", session["id"], "--amount", "1.5")
        assert paid.returncode == 0, paid.stderr
        body = _wait_paid(stack, session["id"])
        assert body["amount_received_minor"] == 2_500_000
        assert json.loads(paid.stdout)["mined"] == session["payment"]["min_confirmations"] - 1

        # Paying it again is refused, as `trigger onecom payment.succeeded` refuses it: one line naming the
        # status, exit 1, nothing sent (no transaction, no block, the money received unchanged). It paid the
        # session a second time before.
        block_before = _rpc(chain["rpc_url"], "eth_blockNumber")
        second = _pay(home, "--session", session["id"])
        assert (second.returncode, second.stdout) == (1, ""), (
            second.returncode,
            second.stdout,
            second.stderr,
        )
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "status paid" in lines[0] and session["id"] in lines[0], second.stderr
        assert _rpc(chain["rpc_url"], "eth_blockNumber") == block_before
        assert _session(stack, session["id"])["amount_received_minor"] == 2_500_000

        bad = _pay(home, "--session", "not-a-session")
        assert bad.returncode == 2 and "not a session id" in bad.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0, log.read_text(errors="replace")
    with pytest.raises(requests.ConnectionError):
        _rpc(chain["rpc_url"], "eth_chainId")  # anvil stopped with the stack

    proc = _up(home, ports, log)
    try:
        again = _wait_for_stack(home, proc, log)
        assert again["chain"]["token"]["address"] == token["address"]  # deployed once, remembered
        assert _rpc(again["chain"]["rpc_url"], "eth_getCode", [token["address"], "latest"]) != "0x"
        assert _session(again, session["id"])["status"] == "paid"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
