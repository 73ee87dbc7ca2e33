"""README "Configuration": a malformed value stops `paygate serve` with exit code 2 and one line naming the
variable, and never printing a secret. A walk of the table found values that were accepted and broke later
(a tracing endpoint that is no URL, a public URL that is no URL) and a line naming the wrong variable."""

from __future__ import annotations

import pytest

from support.processes import serve_until_configured

CASES = [
    ("billing", "OTEL_EXPORTER_OTLP_ENDPOINT", "not a url"),
    ("session", "OTEL_EXPORTER_OTLP_ENDPOINT", "127.0.0.1:4318"),
    ("keys", "PAYGATE_JWT_ACTIVE_KID", "no-such-kid"),
    ("keys", "PAYGATE_PUBLIC_URL", "notaurl"),
    ("gateway", "PAYGATE_PUBLIC_URL", "ftp://paygate.example"),
]


@pytest.mark.parametrize(("service", "variable", "value"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_malformed_value_exits_2_naming_the_variable(service: str, variable: str, value: str) -> None:
    result = serve_until_configured(service, {variable: value})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], lines[0]


def test_tracing_endpoint_credentials_are_not_logged() -> None:
    """The `tracing on` line names the collector, never a password in its address."""
    endpoint = "http://user:otel-s3cret@127.0.0.1:4318"
    result = serve_until_configured(
        "billing", {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "PAYGATE_LOG_LEVEL": "debug"}
    )
    assert result.returncode == 1, result.stderr  # past the checks, stopped by the unreachable database
    assert "tracing on" in result.stderr
    assert "otel-s3cret" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector.example:4318"),
        ("PAYGATE_PUBLIC_URL", "https://pay.example"),
    ],
)
def test_well_formed_values_get_past_the_checks(variable: str, value: str) -> None:
    result = serve_until_configured("keys", {variable: value})
    assert result.returncode == 1, result.stderr
    assert "configuration error" not in result.stderr
