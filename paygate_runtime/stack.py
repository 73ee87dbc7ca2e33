"""Where a running `paygate up` stack is described: $PAYGATE_HOME/stack.json and the dev secrets beside it."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def paygate_home(explicit: str | None = None) -> Path:
    return Path(explicit or os.environ.get("PAYGATE_HOME") or "./.paygate").resolve()


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write a file only its owner can read (it may hold a plaintext dev key or secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _whsec() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _signing_key_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def load_or_create_dev_secrets(home: Path) -> dict[str, str]:
    """Secrets for a local stack, made once and kept (mode 0600) so restarts keep old links and keys valid."""
    path = home / "secrets.json"
    existing = read_json(path) or {}
    wanted: dict[str, Callable[[], str]] = {
        "stripe_webhook_secret": _whsec,
        "onecom_webhook_secret": _whsec,
        "web3_webhook_secret": _whsec,
        # One.com and web3 events are live when a live secret verifies them (contract §6a).
        "onecom_webhook_secret_live": _whsec,
        "web3_webhook_secret_live": _whsec,
        "keys_encryption_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "session_encryption_key": lambda: base64.b64encode(secrets.token_bytes(32)).decode(),
        "jwt_signing_key_pem": _signing_key_pem,
        "jwt_signing_kid": lambda: "dev-" + secrets.token_hex(4),
        "customer_subject_secret": lambda: secrets.token_hex(32),
    }
    changed = False
    for name, make in wanted.items():
        if name not in existing:
            existing[name] = make()
            changed = True
    if changed:
        write_private_json(path, existing)
    return existing


def stale_key_message(stack: dict[str, Any], home: Path | None = None) -> str:
    """One line for a 401 answered to stack.json's merchant key (`paygate demo`, `listen`, `pay`), saying how
    to get a working key; it names no secret. `paygate merchant keys roll` of that key keeps the file in step,
    but a roll or revoke through the API or the dashboard cannot reach the file."""
    path = (home or paygate_home()) / "stack.json"
    merchant = str((stack.get("merchant") or {}).get("id") or "<merchant id>")
    return (
        f"the merchant key in {path} no longer works (HTTP 401: it was rolled or revoked). "
        "Restart `paygate up` to give the stack a working test key, or make one with "
        f"`paygate merchant keys create --merchant {merchant} --mode test` and put it in stack.json's "
        "merchant.api_key"
    )


def replace_stack_key(home: Path, old_secret: str, new_secret: str) -> list[Path]:
    """After the stack's own merchant key was rolled: put the new secret wherever the old one is kept
    (stack.json and the dev merchant file beside it), each rewritten atomically with mode 0600."""
    changed: list[Path] = []
    for name, where in (("stack.json", ("merchant", "api_key")), ("dev_merchant.json", ("api_key",))):
        path = home / name
        data = read_json(path)
        holder = data
        for part in where[:-1]:
            holder = (holder or {}).get(part)
        if data is None or not isinstance(holder, dict) or holder.get(where[-1]) != old_secret:
            continue
        holder[where[-1]] = new_secret
        write_private_json(path, data)
        changed.append(path)
    return changed


def load_stack(home: Path | None = None) -> dict[str, Any]:
    path = (home or paygate_home()) / "stack.json"
    stack = read_json(path)
    if stack is None:
        raise SystemExit(f"paygate: no running stack found ({path} is missing); start one with `paygate up`")
    return stack
