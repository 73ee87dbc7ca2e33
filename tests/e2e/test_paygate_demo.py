"""`paygate up`, then `paygate demo` in another process: the seed flow end to end, as contract §1 describes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from support.stack import free_ports

pytestmark = pytest.mark.slow


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    env["PAYGATE_HOME"] = str(home)
    return env


def test_demo_against_paygate_up(tmp_path: Path) -> None:
    home = tmp_path / "home"
    http, session, billing, keys, smtp = free_ports(5)
    up = subprocess.Popen(
        [sys.executable, "-m", "paygate_runtime.cli.main", "up", "--http-port", str(http),
         "--session-port", str(session), "--billing-port", str(billing), "--keys-port", str(keys),
         "--smtp-port", str(smtp)],
        env=_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not (home / "stack.json").exists():
            assert up.poll() is None, up.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no stack.json within 90 s"
            time.sleep(0.2)
        stack = json.loads((home / "stack.json").read_text())

        demo = subprocess.run(
            [sys.executable, "-m", "paygate_runtime.cli.main", "demo"],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        out = demo.stdout
        session_id = re.search(r"session\s+([0-9a-f-]{36})", out).group(1)  # type: ignore[union-attr]
        headers = {"X-API-Key": stack["merchant"]["api_key"]}
        body = requests.get(
            f"{stack['gateway_url']}/v1/sessions/{session_id}", headers=headers, timeout=10
        ).json()
        assert body["status"] == "paid" and body["fulfilment_status"] == "done"
        assert re.search(rf"invoice\s+{re.escape(body['invoice_number'])}\n", out), out
        assert f"access link      {body['access_url']}" in out
        page = requests.get(f"{stack['gateway_url']}/checkout?session={session_id}", timeout=10)
        assert page.status_code == 200 and 'data-status="paid">Paid<' in page.text
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(timeout=20)
