"""`paygate up` as a person runs it, for the browser tests: a subprocess with its own PAYGATE_HOME, embedded
PostgreSQL, free ports and SMTP sink; the test reads what it needs from $PAYGATE_HOME/stack.json and the mail the
stack sent from $PAYGATE_HOME/mail/."""

from __future__ import annotations

import contextlib
import email
import email.message
import email.policy
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from support.stack import free_ports

# The customer's mail carries the link with its mail proof (`&proof=`); the merchant's copy has none.
ACCESS_LINK = re.compile(r"https?://[^\s\"'<>]+/access\?token=[A-Za-z0-9_.\-]+(?:&proof=[A-Za-z0-9]+)?")
# The database and four services start one after another; a loaded 2-core machine needs the margin, which
# stays under the suite's hang guard (PAYGATE_TEST_HANG_S, 180 s) so a failed start reports its own output.
START_TIMEOUT_S = 120


@contextlib.contextmanager
def running_paygate_up(home: Path, env: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Start `paygate up` in `home` on free ports (with `env` added) and yield its stack.json (plus "home");
    stopped with SIGINT, as Ctrl-C stops it, on exit."""
    http, session, billing, keys, smtp = free_ports(5)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PAYGATE_") and k != "DATABASE_URL"}
    child_env.update(PAYGATE_HOME=str(home), PAYGATE_LOG_LEVEL="WARNING", **(env or {}))
    command = [sys.executable, "-m", "paygate_runtime.cli.main", "up", "--http-port", str(http)]
    command += ["--session-port", str(session), "--billing-port", str(billing), "--keys-port", str(keys)]
    command += ["--smtp-port", str(smtp)]
    proc = subprocess.Popen(command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        stack_file = home / "stack.json"
        while not stack_file.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                output = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"paygate up did not start:\n{output}")
            time.sleep(0.2)
        stack = json.loads(stack_file.read_text())
        stack["home"] = home
        yield stack
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def mailed(
    mail_dir: Path, match: Callable[[email.message.EmailMessage], bool], *, timeout: float = 60
) -> list[email.message.EmailMessage]:
    """Every message in the sink's folder that `match` accepts, waiting up to `timeout` for at least one."""
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for path in sorted(mail_dir.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if match(message):  # type: ignore[arg-type]
                found.append(message)
        if found:
            return found  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"no matching mail in {mail_dir} within {timeout}s")
        time.sleep(0.3)


def access_link(mail_dir: Path, email_address: str, timeout: float = 60) -> str:
    """The access link from the customer's mail, as the SMTP sink saved it."""

    def has_link(message: email.message.EmailMessage) -> bool:
        return email_address in str(message.get("To", "")) and _link_in(message) is not None

    (message, *_rest) = mailed(mail_dir, has_link, timeout=timeout)
    link = _link_in(message)
    assert link is not None
    return link


def _link_in(message: email.message.EmailMessage) -> str | None:
    for part in message.walk():
        if part.get_content_maintype() == "text":
            found = ACCESS_LINK.search(part.get_content())  # type: ignore[attr-defined]
            if found:
                return found.group(0)
    return None
