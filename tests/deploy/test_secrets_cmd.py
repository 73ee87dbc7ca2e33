"""`paygate secrets generate`: the Secrets it prints are read as-is by the services' own configuration code."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from keys_service.entrypoints.main import load_config as keys_config
from paygate_runtime.cli.main import main
from paygate_runtime.config import Env
from paygate_runtime.secret_checks import check_secrets
from paygate_runtime.settings import CommonSettings
from session_service.entrypoints.main import load_config as session_config
from support.certs import TestCA
from webhook_gateway.entrypoints.main import load_config as gateway_config


def generate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    assert main(["secrets", "generate", *args]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    return {d["metadata"]["name"]: d for d in docs}


def test_cnpg_overlay_secrets_are_what_the_services_and_cnpg_read(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = generate(capsys, "--overlay", "prod", "--stripe-webhook-secret", "whsec_test123")
    for obj in secrets.values():
        assert obj["kind"] == "Secret" and obj["metadata"]["namespace"] == "paygate"
    for svc in ("session", "billing", "keys", "gateway"):
        for suffix, variable in (("", "PAYGATE_DATABASE_URL"), ("-owner", "PAYGATE_MIGRATE_DATABASE_URL")):
            role = secrets[f"paygate-db-role-{svc}{suffix}"]
            assert role["type"] == "kubernetes.io/basic-auth"
            assert role["stringData"]["username"] == f"paygate_{svc}" + ("_owner" if suffix else "")
            url = secrets[f"paygate-{svc}-db{suffix}"]["stringData"][variable]
            password = role["stringData"]["password"]
            assert url.startswith(f"postgresql://{role['stringData']['username']}:{password}@paygate-db-rw.")
            assert "sslmode=verify-full&sslrootcert=/etc/paygate/db-ca/ca.crt" in url
    keys_env = Env(
        {**secrets["paygate-keys-secrets"]["stringData"], "PAYGATE_DATABASE_URL": "postgresql://x@h/db"}
    )
    config = keys_config(keys_env)  # raises ConfigError on any format the keys service cannot read
    assert config.secret_box.versions == (1,)
    # The session service seals webhook endpoint secrets with its own key, read from its own Secret.
    session_env = Env({**secrets["paygate-session-secrets"]["stringData"]})
    assert session_config(session_env).secret_box.versions == (1,)
    gateway_env = Env(
        {**secrets["paygate-gateway-secrets"]["stringData"], "PAYGATE_DATABASE_URL": "postgresql://x@h/db"}
    )
    check_secrets("gateway", gateway_env)
    assert gateway_config(gateway_env).stripe_webhook_secrets == ["whsec_test123"]
    CommonSettings.from_env("gateway", gateway_env)
    assert "paygate-db-ca" not in secrets  # CloudNativePG makes it


def test_external_db_needs_a_host_a_ca_and_a_file_for_the_role_passwords(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ca = TestCA(tmp_path / "ca")
    roles = tmp_path / "roles.sql"
    secrets = generate(
        capsys,
        "--overlay",
        "external-db",
        "--db-host",
        "db.example.com",
        "--db-ca-file",
        str(ca.ca_file),
        "--role-sql",
        str(roles),
    )
    assert not any(name.startswith("paygate-db-role-") for name in secrets)
    assert secrets["paygate-db-ca"]["stringData"]["ca.crt"] == ca.ca_file.read_text()
    sql = roles.read_text()
    assert stat.S_IMODE(roles.stat().st_mode) == 0o600
    url = secrets["paygate-keys-db"]["stringData"]["PAYGATE_DATABASE_URL"]
    password = url.split("://paygate_keys:", 1)[1].split("@", 1)[0]
    assert f"ALTER ROLE paygate_keys LOGIN PASSWORD '{password}';" in sql
    assert "@db.example.com:5432/paygate?" in url
    with pytest.raises(SystemExit, match="--db-host"):
        main(["secrets", "generate", "--overlay", "external-db"])
    with pytest.raises(SystemExit, match="--db-ca-file"):
        main(["secrets", "generate", "--overlay", "external-db", "--db-host", "h"])
    assert (
        main(
            [
                "secrets",
                "generate",
                "--overlay",
                "external-db",
                "--db-host",
                "h",
                "--db-ca-file",
                str(ca.ca_file),
            ]
        )
        == 2
    )


def test_every_generate_makes_new_values(capsys: pytest.CaptureFixture[str]) -> None:
    first = generate(capsys, "--overlay", "dev")
    second = generate(capsys, "--overlay", "dev")
    for name in ("paygate-keys-secrets", "paygate-gateway-secrets", "paygate-db-role-keys"):
        assert first[name]["stringData"] != second[name]["stringData"]


def test_rotation_helpers_print_one_new_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["secrets", "encryption-key", "--version", "2"]) == 0
    entry = capsys.readouterr().out.strip()
    assert entry.startswith("2:")
    assert main(["secrets", "jwt-key", "--kid", "2027-01"]) == 0
    jwt = json.loads(capsys.readouterr().out)
    old = generate(capsys, "--overlay", "dev")["paygate-keys-secrets"]["stringData"]
    rotated = dict(old)
    rotated["PAYGATE_KEYS_ENCRYPTION_KEYS"] = f"{old['PAYGATE_KEYS_ENCRYPTION_KEYS']},{entry}"
    rotated["PAYGATE_JWT_SIGNING_KEYS"] = json.dumps([*json.loads(old["PAYGATE_JWT_SIGNING_KEYS"]), jwt])
    config = keys_config(Env(rotated))
    assert config.secret_box.current_version == 2  # the highest version seals new values
    assert config.access.keyring.active_kid == "2027-01"  # the last key signs
    assert main(["secrets", "encryption-key", "--version", "0"]) == 2


def test_chain_pairs_go_to_one_secret_both_chain_readers_accept(capsys: pytest.CaptureFixture[str]) -> None:
    secrets = generate(
        capsys,
        "--overlay",
        "prod",
        "--chain",
        "live",
        "1",
        "https://mainnet.example/key",
        "--chain",
        "test",
        "11155111",
        "https://sepolia.example/key",
    )
    chain = secrets["paygate-chain"]["stringData"]
    assert chain == {
        "PAYGATE_CHAIN_ID_LIVE": "1",
        "PAYGATE_CHAIN_RPC_URL_LIVE": "https://mainnet.example/key",
        "PAYGATE_CHAIN_ID_TEST": "11155111",
        "PAYGATE_CHAIN_RPC_URL_TEST": "https://sepolia.example/key",
    }
    config = gateway_config(Env({**chain, "PAYGATE_DATABASE_URL": "postgresql://x@h/db"}))
    assert config is not None
    with pytest.raises(SystemExit, match="https"):
        main(["secrets", "generate", "--chain", "test", "31337", "http://127.0.0.1:8545"])


def test_smtp_credentials_become_the_secret_both_mail_senders_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paygate_runtime.smtp import StartTls, load_smtp_settings
    from webhook_gateway.entrypoints.portal_support import load_settings as portal_mail_settings

    assert "paygate-smtp" not in generate(capsys, "--overlay", "dev")  # no credentials: no Secret
    password = tmp_path / "smtp-password"
    password.write_text("pa55-w0rd with spaces\n")  # as `echo ... > file` leaves it
    secrets = generate(
        capsys, "--overlay", "prod", "--smtp-username", "relay-user", "--smtp-password-file", str(password)
    )
    smtp = secrets["paygate-smtp"]
    assert smtp["type"] == "Opaque" and smtp["metadata"]["namespace"] == "paygate"
    env = Env({"PAYGATE_SMTP_HOST": "smtp.example.com", "PAYGATE_SMTP_PORT": "587", **smtp["stringData"]})
    settings = load_smtp_settings(env)
    assert settings is not None and settings.username == "relay-user"
    assert settings.password is not None and settings.password.reveal() == "pa55-w0rd with spaces"
    assert settings.starttls is StartTls.REQUIRED  # credentials imply STARTTLS
    assert portal_mail_settings(env) == settings  # the gateway's contact form reads the same
    # From stdin, so the password never sits on a command line.
    monkeypatch.setattr("sys.stdin", io.StringIO("from-stdin"))
    secrets = generate(capsys, "--smtp-username", "u", "--smtp-password-file", "-")
    assert secrets["paygate-smtp"]["stringData"]["PAYGATE_SMTP_PASSWORD"] == "from-stdin"
    password.write_text("two\nlines")
    with pytest.raises(SystemExit) as refused:
        main(["secrets", "generate", "--smtp-username", "u", "--smtp-password-file", str(password)])
    assert "two" not in str(refused.value) and "lines" not in str(refused.value)
    with pytest.raises(SystemExit):
        main(["secrets", "generate", "--smtp-username", "u"])


def _gateway(secrets: dict[str, dict[str, Any]]) -> Any:
    env = Env(
        {**secrets["paygate-gateway-secrets"]["stringData"], "PAYGATE_DATABASE_URL": "postgresql://x@h/db"}
    )
    check_secrets("gateway", env)
    return gateway_config(env)


ONECOM_TEST, ONECOM_LIVE = "whsec_" + "A" * 44, "whsec_" + "B" * 44


def test_provider_secrets_name_their_mode_and_the_gateway_reads_each_as_that_mode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A production deployment takes live payments: the secrets it is given must land in the live variables.
    The unsuffixed One.com and web3 variables mean test, so a live One.com secret given the old way verified
    every live event as a test one, and each was quarantined as a mode mismatch."""
    secrets = generate(
        capsys,
        "--overlay", "prod",
        "--stripe-webhook-secret", "whsec_live_endpoint", "--stripe-webhook-secret", "whsec_test_endpoint",
        "--onecom-webhook-secret-live", ONECOM_LIVE, "--onecom-webhook-secret-test", ONECOM_TEST,
        "--onecom-api-key-live", "live-api-key", "--onecom-api-key-test", "test-api-key",
        "--onecom-api-base", "https://api.onecom.example/v1",
        "--stripe-api-key", "sk_live_" + "L" * 24, "--stripe-api-key", "rk_test_" + "T" * 24,
    )  # fmt: skip
    config = _gateway(secrets)
    assert config.stripe_api_keys == {"live": "sk_live_" + "L" * 24, "test": "rk_test_" + "T" * 24}
    assert config.stripe_webhook_secrets == ["whsec_live_endpoint", "whsec_test_endpoint"]
    assert (config.onecom_webhook_secrets, config.onecom_webhook_secrets_live) == (
        [ONECOM_TEST],
        [ONECOM_LIVE],
    )
    assert config.providers.onecom_api_keys == {"test": "test-api-key", "live": "live-api-key"}
    assert config.providers.onecom_api_base == "https://api.onecom.example/v1"
    # The web3 notifier is the operator's own: one new secret per mode, different from each other.
    assert len(config.web3_webhook_secrets) == 1 and len(config.web3_webhook_secrets_live) == 1
    assert config.web3_webhook_secrets != config.web3_webhook_secrets_live


def test_a_onecom_api_key_comes_with_its_base_and_a_secret_without_a_mode_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Without the base the gateway refused to start (PAYGATE_ONECOM_API_BASE is required with a key).
    with pytest.raises(SystemExit, match="--onecom-api-base"):
        main(["secrets", "generate", "--onecom-api-key-live", "k"])
    with pytest.raises(SystemExit, match="--onecom-api-key"):
        main(["secrets", "generate", "--onecom-api-base", "https://api.onecom.example"])
    with pytest.raises(SystemExit, match="https"):
        main(["secrets", "generate", "--onecom-api-key-live", "k", "--onecom-api-base", "ftp://x"])
    # The flags without a mode said nothing of it and meant test: each is refused, naming the two to use.
    for flag, value in (
        ("--onecom-webhook-secret", ONECOM_LIVE),
        ("--onecom-api-key", "k"),
        ("--web3-webhook-secret", ONECOM_LIVE),
    ):
        with pytest.raises(SystemExit, match=f"{flag}-test or {flag}-live"):
            main(["secrets", "generate", flag, value])
    with pytest.raises(SystemExit, match="two --stripe-api-key of mode live"):
        main(["secrets", "generate", "--stripe-api-key", "sk_live_a", "--stripe-api-key", "sk_live_b"])
    with pytest.raises(SystemExit, match="sk_test_"):
        main(["secrets", "generate", "--stripe-api-key", "pk_live_a"])
    # One secret for both modes would let a test signer make live events.
    with pytest.raises(SystemExit, match="both modes"):
        main(["secrets", "generate", "--onecom-webhook-secret-test", ONECOM_TEST,
              "--onecom-webhook-secret-live", ONECOM_TEST])  # fmt: skip
    assert _gateway(generate(capsys, "--overlay", "dev")).providers.onecom_api_keys == {}


def test_a_file_flag_naming_no_readable_or_writable_file_is_one_line(tmp_path: Path) -> None:
    """A walk of README's command table: each of these raised an OSError traceback."""
    missing = str(tmp_path / "missing")
    with pytest.raises(SystemExit, match="--smtp-password-file"):
        main(["secrets", "generate", "--smtp-username", "u", "--smtp-password-file", missing])
    external = ["secrets", "generate", "--overlay", "external-db", "--db-host", "h"]
    with pytest.raises(SystemExit, match="--db-ca-file"):
        main([*external, "--db-ca-file", missing, "--role-sql", str(tmp_path / "roles.sql")])
    with pytest.raises(SystemExit, match="--role-sql"):
        main([*external, "--db-sslmode-require", "--role-sql", str(tmp_path / "no-dir" / "roles.sql")])


def test_a_webhook_secret_the_gateway_would_refuse_at_start_is_refused_here(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A walk of README's command table: `generate` printed these, and the gateway then stopped at start-up
    (README: "Secrets are parsed at start"). Refused now, naming the flag and never the value."""
    for flag, value in (
        ("--stripe-webhook-secret", "not-a-stripe-secret"),
        (
            "--onecom-webhook-secret-test",
            "whsec_c2hvcnQ=",
        ),  # base64 of 5 bytes: Standard Webhooks wants 24..64
        ("--web3-webhook-secret-live", "not-base64!"),
    ):
        with pytest.raises(SystemExit, match=f"paygate secrets generate: {flag}") as refused:
            main(["secrets", "generate", flag, value])
        assert value not in str(refused.value)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("kid", ["", "2027 01", "k,1", "x" * 65])
def test_a_jwt_kid_the_keys_service_would_refuse_is_refused_here(
    capsys: pytest.CaptureFixture[str], kid: str
) -> None:
    """A walk of README's command table: `jwt-key --kid ""` printed {"kid": "", ...}, a key the keys service then
    refused at start-up (its kids are 1..64 letters, digits, '.', '_', '-'). Same for generate's --jwt-kid."""
    with pytest.raises(ValueError, match="signing key id"):
        keys_service_keyring_of(json.dumps([{"kid": kid, "pem": "x"}]))
    assert main(["secrets", "jwt-key", "--kid", kid]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "--kid" in captured.err
    with pytest.raises(SystemExit, match="--jwt-kid"):
        main(["secrets", "generate", "--jwt-kid", kid])


def keys_service_keyring_of(value: str) -> Any:
    from keys_service.entrypoints.main import SigningKeyring

    return SigningKeyring.from_config(value, None)
