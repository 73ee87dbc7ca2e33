"""A malformed secret stops `paygate serve` before anything listens: exit code 2 and one line that names the
variable and never shows its value (never a failure at the first request)."""

from __future__ import annotations

import base64
import json
import secrets

import pytest

from support.processes import serve_until_configured

CASES = [
    ("gateway", "PAYGATE_ONECOM_WEBHOOK_SECRETS", "whsec_this*is*not*base64"),
    ("gateway", "PAYGATE_WEB3_WEBHOOK_SECRETS", "whsec_" + base64.b64encode(b"too short").decode()),
    ("gateway", "PAYGATE_STRIPE_WEBHOOK_SECRETS", "stripe-secret-" + secrets.token_hex(8)),
    ("gateway", "PAYGATE_STRIPE_API_KEY", "pk_live_" + secrets.token_hex(8)),
    ("keys", "PAYGATE_KEYS_ENCRYPTION_KEYS", base64.b64encode(secrets.token_bytes(16)).decode()),
    ("keys", "PAYGATE_JWT_SIGNING_KEYS", '[{"kid": "k1", "pem": "-----BEGIN PRIVATE KEY-----\\nxx"}]'),
    ("keys", "PAYGATE_CUSTOMER_SUBJECT_SECRET", "not-hex-" + secrets.token_hex(8)),
    ("session", "PAYGATE_SESSION_ENCRYPTION_KEYS", base64.b64encode(secrets.token_bytes(16)).decode()),
]


@pytest.mark.parametrize(("service", "variable", "value"), CASES, ids=[case[1] for case in CASES])
def test_malformed_secret_exits_2_naming_the_variable(service: str, variable: str, value: str) -> None:
    result = serve_until_configured(service, {variable: value})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0]
    assert value not in result.stderr and value not in result.stdout


def test_well_formed_configuration_gets_past_the_checks() -> None:
    """The same environment with good secrets is refused only later, by the unreachable database."""
    result = serve_until_configured("gateway", {})
    assert result.returncode not in (0, 2), result.stderr
    assert "configuration error" not in result.stderr


@pytest.mark.parametrize("service", ["session", "billing", "keys", "gateway"])
def test_an_unreachable_database_stops_start_up_with_a_log_line_not_a_traceback(service: str) -> None:
    """A walk of README's command table: `paygate serve` with no database answering printed asyncpg's traceback
    among the JSON log lines. It still exits 1 (kubelet restarts it with its backoff), saying why in one line."""
    result = serve_until_configured(
        service, {"PAYGATE_DATABASE_URL": "postgresql://paygate:s3cret-pw@127.0.0.1:1/paygate"}
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = json.loads(result.stderr.strip().splitlines()[-1])
    assert last["level"] == "error" and "database" in last["msg"], last
    assert "ConnectionRefusedError" in json.dumps(last)
    assert "s3cret-pw" not in result.stderr
