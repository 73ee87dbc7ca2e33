"""Start-up configuration: malformed secrets are refused by name (never echoing the value), the log level is
read in any case, and the metrics port has a per-service default."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from paygate_runtime.config import ConfigError, Env
from paygate_runtime.metrics import DEFAULT_METRICS_PORTS
from paygate_runtime.secret_checks import check_secrets
from paygate_runtime.settings import CommonSettings
from support.certs import TestCA

DSN = "postgresql://paygate@127.0.0.1:5432/paygate"


def _whsec(size: int = 32) -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(size)).decode()


def _settings(service: str = "gateway", **env: str) -> CommonSettings:
    return CommonSettings.from_env(service, Env({"PAYGATE_DATABASE_URL": DSN, **env}))


GOOD = {
    "PAYGATE_STRIPE_WEBHOOK_SECRETS": "whsec_" + secrets.token_hex(16),
    "PAYGATE_ONECOM_WEBHOOK_SECRETS": _whsec(),
    "PAYGATE_WEB3_WEBHOOK_SECRETS": f"{_whsec()},{_whsec(24)}",
    "PAYGATE_STRIPE_API_KEY": "sk_test_" + secrets.token_hex(12),
    "PAYGATE_STRIPE_API_KEY_LIVE": "rk_live_" + secrets.token_hex(12),
    "PAYGATE_ONECOM_API_KEY_TEST": "onecom_" + secrets.token_hex(12),
    "PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE": base64.b64encode(secrets.token_bytes(32)).decode(),  # no prefix
}

# (variable, malformed value): every one must stop start-up naming the variable.
MALFORMED = [
    ("PAYGATE_ONECOM_WEBHOOK_SECRETS", "whsec_not*base64!"),
    ("PAYGATE_ONECOM_WEBHOOK_SECRETS", "whsec_" + base64.b64encode(b"short").decode()),
    ("PAYGATE_ONECOM_WEBHOOK_SECRETS_LIVE", f"{_whsec()},whsec_%%%%"),
    ("PAYGATE_WEB3_WEBHOOK_SECRETS", "plain text secret"),
    ("PAYGATE_WEB3_WEBHOOK_SECRETS_TEST", "whsec_" + base64.b64encode(secrets.token_bytes(100)).decode()),
    ("PAYGATE_STRIPE_WEBHOOK_SECRETS", "sk_test_" + secrets.token_hex(16)),
    ("PAYGATE_STRIPE_WEBHOOK_SECRETS", "whsec_"),
    ("PAYGATE_STRIPE_WEBHOOK_SECRETS_LIVE", "whsec_abc def"),
    ("PAYGATE_STRIPE_API_KEY", "pk_test_" + secrets.token_hex(12)),
    ("PAYGATE_STRIPE_API_KEY_LIVE", "sk_test_" + secrets.token_hex(12)),
    ("PAYGATE_STRIPE_API_KEY_TEST", "sk_live_" + secrets.token_hex(12)),
    ("PAYGATE_ONECOM_API_KEY", "key with\nnewline"),
]


def test_well_formed_secrets_pass() -> None:
    check_secrets("gateway", Env(GOOD))
    _settings(**GOOD)


# Ids without the values: several are random, and pytest-xdist workers must collect the same test names.
@pytest.mark.parametrize(
    ("variable", "value"), MALFORMED, ids=[f"{i}-{v}" for i, (v, _) in enumerate(MALFORMED)]
)
def test_a_malformed_secret_names_its_variable_and_never_its_value(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(**{**GOOD, variable: value})
    assert caught.value.variable == variable
    for part in value.split(","):
        if len(part) > 8 and part not in GOOD.values():
            assert part not in str(caught.value)
            assert part[6:] not in str(caught.value)


def test_secrets_are_checked_only_by_the_services_that_read_them() -> None:
    # A keys or session pod may carry a gateway variable it never reads; it is the gateway's to refuse.
    _settings("session", PAYGATE_STRIPE_WEBHOOK_SECRETS="not-a-secret")


@pytest.mark.parametrize(
    ("given", "level"), [("info", "INFO"), ("debug", "DEBUG"), ("Warning", "WARNING"), ("warn", "WARNING")]
)
def test_log_level_is_read_in_any_case(given: str, level: str) -> None:
    assert _settings(PAYGATE_LOG_LEVEL=given).log_level == level


def test_unknown_log_level_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        _settings(PAYGATE_LOG_LEVEL="loud")
    assert caught.value.variable == "PAYGATE_LOG_LEVEL"


def test_metrics_port_defaults_per_service_and_can_be_set() -> None:
    for service, port in DEFAULT_METRICS_PORTS.items():
        settings = _settings(service)
        assert (settings.metrics_port, settings.metrics_port_configured) == (port, False)
    assert len(set(DEFAULT_METRICS_PORTS.values())) == 4
    settings = _settings("keys", PAYGATE_METRICS_PORT="19999")
    assert (settings.metrics_port, settings.metrics_port_configured) == (19999, True)
    assert _settings("keys", PAYGATE_METRICS_PORT="0").metrics_port == DEFAULT_METRICS_PORTS["keys"]
    with pytest.raises(ConfigError):
        _settings("keys", PAYGATE_METRICS_PORT="metrics")


def test_tls_files_that_do_not_parse_stop_start_up(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    mine = ca.issue("session", server=True, client=True)
    other = ca.issue("billing", server=True, client=True)
    good = {
        "PAYGATE_TLS_CERT_FILE": str(mine.cert_file),
        "PAYGATE_TLS_KEY_FILE": str(mine.key_file),
        "PAYGATE_TLS_CA_FILE": str(ca.ca_file),
    }
    assert _settings("session", **good).tls is not None
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    for variable, path in [
        ("PAYGATE_TLS_KEY_FILE", garbage),
        ("PAYGATE_TLS_KEY_FILE", other.key_file),  # a real key, but not this certificate's
        ("PAYGATE_TLS_CERT_FILE", garbage),
        ("PAYGATE_TLS_CA_FILE", garbage),
    ]:
        with pytest.raises(ConfigError) as caught:
            _settings("session", **{**good, variable: str(path)})
        assert caught.value.variable == variable


def test_the_pool_floor_defaults_to_two_and_never_exceeds_the_pool() -> None:
    assert (_settings().pool_min, _settings().pool_max) == (2, 10)
    assert _settings(PAYGATE_DB_POOL_MAX="1").pool_min == 1
    assert _settings(PAYGATE_DB_POOL_MIN="8", PAYGATE_DB_POOL_MAX="8").pool_min == 8
    with pytest.raises(ConfigError) as caught:
        _settings(PAYGATE_DB_POOL_MIN="12", PAYGATE_DB_POOL_MAX="8")
    assert caught.value.variable == "PAYGATE_DB_POOL_MIN"
