"""`paygate secrets generate`: every Kubernetes Secret the manifests under deploy/ reference, as YAML.

The values are in exactly the formats the services read (README "Configuration"), freshly generated where
paygate owns the secret (database passwords, the keys service's encryption key, JWT signing key and subject
secret, the web3 notifier's webhook secrets) and taken from flags where a provider issues it (Stripe's and
One.com's webhook secrets and API keys, each under the variable of its mode, and the SMTP relay's
credentials). docs/deploy.md shows the one command per overlay; the Kubernetes
test in tests/deploy/test_kubelet.py runs that same command and starts every pod with its output.

    paygate secrets generate --overlay prod [--stripe-webhook-secret whsec_...] | kubectl apply -f -

Also, for rotations, one new value at a time:

    paygate secrets encryption-key --version 2      # "2:<base64 of 32 bytes>" for PAYGATE_KEYS_ENCRYPTION_KEYS
    paygate secrets jwt-key --kid 2027-01            # one {"kid", "pem"} entry for PAYGATE_JWT_SIGNING_KEYS

Nothing here talks to a cluster or a database, and nothing is written anywhere but stdout and the files named
by flags (created with mode 0600). YAML is written by hand, with every value a JSON-quoted string (which YAML
reads as the same string), so the command needs no YAML library in the runtime image.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from paygate_runtime.secret_checks import check_standard_webhooks_secret, check_stripe_webhook_secret

SERVICES = ("session", "billing", "keys", "gateway")
# The keys service's rule for a signing key id (keys_service.domain.access_tokens, which the runtime may not
# import; tests/deploy/test_secrets_cmd.py holds the two together): it refuses to start with any other.
JWT_KID = re.compile(r"[A-Za-z0-9._-]{1,64}")
JWT_KID_RULE = "must be 1..64 letters, digits, '.', '_' or '-'"
OVERLAYS = ("dev", "prod", "external-db")
CNPG_OVERLAYS = ("dev", "prod")
# The CloudNativePG read-write Service of the Cluster `paygate-db` (deploy/components/cnpg/cluster.yaml).
CNPG_RW_SERVICE = "paygate-db-rw"
DATABASE = "paygate"
# Where the Deployments and Jobs mount the database CA (the Secret `paygate-db-ca`, key ca.crt).
DB_CA_PATH = "/etc/paygate/db-ca/ca.crt"
DB_CA_SECRET = "paygate-db-ca"
PART_OF = {"app.kubernetes.io/part-of": "paygate"}


def _whsec() -> str:
    """A Standard Webhooks secret: whsec_ and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _password() -> str:
    # Hex: nothing to escape in a URL, a shell or SQL.
    return secrets.token_hex(24)


def encryption_key(version: int) -> str:
    """One PAYGATE_KEYS_ENCRYPTION_KEYS / PAYGATE_SESSION_ENCRYPTION_KEYS entry: `<version>:<base64 of 32
    bytes>` (the highest version seals)."""
    return f"{version}:{base64.b64encode(secrets.token_bytes(32)).decode()}"


def jwt_key(kid: str) -> dict[str, str]:
    """One PAYGATE_JWT_SIGNING_KEYS entry: an Ed25519 key as PKCS#8 PEM."""
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    return {"kid": kid, "pem": pem}


def database_url(role: str, password: str, host: str, port: int, database: str, ca_path: str | None) -> str:
    """An asyncpg/libpq DSN. With a CA the server's certificate and host name are verified (verify-full)."""
    query = f"sslmode=verify-full&sslrootcert={quote(ca_path)}" if ca_path else "sslmode=require"
    return f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}:{port}/{database}?{query}"


def _secret(name: str, namespace: str, data: dict[str, str], kind: str = "Opaque") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(PART_OF)},
        "type": kind,
        "stringData": data,
    }


def build_secrets(args: argparse.Namespace) -> tuple[list[dict[str, object]], list[str]]:
    """The Secrets, and for a database paygate does not run (external-db) the SQL that sets the passwords."""
    namespace = args.namespace
    cnpg = args.overlay in CNPG_OVERLAYS
    host = args.db_host or (f"{CNPG_RW_SERVICE}.{namespace}.svc" if cnpg else None)
    if host is None:
        raise SystemExit("paygate secrets generate: --db-host is required for the external-db overlay")
    ca_path = None if args.db_sslmode_require else DB_CA_PATH
    out: list[dict[str, object]] = []
    role_sql: list[str] = []
    for service in SERVICES:
        for owner in (False, True):
            role = f"paygate_{service}_owner" if owner else f"paygate_{service}"
            suffix = "-owner" if owner else ""
            password = _password()
            if cnpg:
                # CloudNativePG sets each managed role's password from this Secret (username = role name).
                out.append(
                    _secret(
                        f"paygate-db-role-{service}{suffix}",
                        namespace,
                        {"username": role, "password": password},
                        "kubernetes.io/basic-auth",
                    )
                )
            else:
                role_sql.append(f"ALTER ROLE {role} LOGIN PASSWORD '{password}';")
            variable = "PAYGATE_MIGRATE_DATABASE_URL" if owner else "PAYGATE_DATABASE_URL"
            url = database_url(role, password, host, args.db_port, args.db_name, ca_path)
            out.append(_secret(f"paygate-{service}-db{suffix}", namespace, {variable: url}))
    if not cnpg and ca_path is not None:
        if not args.db_ca_file:
            raise SystemExit(
                "paygate secrets generate: --db-ca-file (your database's CA certificate, PEM) is required for "
                "external-db, or --db-sslmode-require to encrypt without verifying the server"
            )
        ca = _read_flag_file("--db-ca-file", args.db_ca_file)
        if "BEGIN CERTIFICATE" not in ca:
            raise SystemExit(f"paygate secrets generate: {args.db_ca_file} holds no PEM certificate")
        out.append(_secret(DB_CA_SECRET, namespace, {"ca.crt": ca}))

    out.append(_secret("paygate-gateway-secrets", namespace, _gateway_secrets(args)))
    if args.chain:
        # An RPC URL usually embeds the provider's API key, so the pair lives in a Secret; the gateway and the
        # session service both read it (envFrom, optional: without it on-chain payments are off).
        chain: dict[str, str] = {}
        for mode, chain_id, url in args.chain:
            if mode not in ("test", "live") or not chain_id.isdigit():
                raise SystemExit("paygate secrets generate: --chain MODE CHAIN_ID RPC_URL, MODE test or live")
            if not url.startswith("https://"):
                raise SystemExit(
                    "paygate secrets generate: the chain RPC URL must be https:// (egress allows 443)"
                )
            chain[f"PAYGATE_CHAIN_ID_{mode.upper()}"] = chain_id
            chain[f"PAYGATE_CHAIN_RPC_URL_{mode.upper()}"] = url
        out.append(_secret("paygate-chain", namespace, chain))

    smtp = _smtp_credentials(args)
    if smtp:
        # SMTP AUTH for the session service's customer mail and the gateway's contact form (envFrom, optional:
        # without it they send unauthenticated). The services then require STARTTLS (paygate_runtime.smtp).
        out.append(_secret("paygate-smtp", namespace, smtp))

    # Seals merchant webhook endpoints' signing secrets at rest (same format as the keys service's key).
    out.append(
        _secret("paygate-session-secrets", namespace, {"PAYGATE_SESSION_ENCRYPTION_KEYS": encryption_key(1)})
    )
    kid = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d") if args.jwt_kid is None else args.jwt_kid
    if not JWT_KID.fullmatch(kid):
        raise SystemExit(f"paygate secrets generate: --jwt-kid {JWT_KID_RULE}")
    out.append(
        _secret(
            "paygate-keys-secrets",
            namespace,
            {
                "PAYGATE_KEYS_ENCRYPTION_KEYS": encryption_key(1),
                "PAYGATE_JWT_SIGNING_KEYS": json.dumps([jwt_key(kid)]),
                "PAYGATE_CUSTOMER_SUBJECT_SECRET": secrets.token_hex(32),
            },
        )
    )
    return out, role_sql


def _gateway_secrets(args: argparse.Namespace) -> dict[str, str]:
    """The providers' secrets, each under the variable of its mode.

    Stripe says in every event whether it is live, so its webhook secrets (one per Stripe endpoint) share one
    variable, and an API key's mode is in its prefix. One.com's and the web3 notifier's events are as live as
    the secret that verifies them, so those flags name their mode: the unsuffixed variables mean test, and a
    live secret put there would verify every live event as a test one (quarantined as a mode mismatch).
    """
    for flag in ("onecom_webhook_secret", "onecom_api_key", "web3_webhook_secret"):
        if getattr(args, flag) is not None:
            name = "--" + flag.replace("_", "-")
            raise SystemExit(
                f"paygate secrets generate: {name} names no mode: use {name}-test or {name}-live"
            )
    _check_webhook_secrets(args)
    gateway: dict[str, str] = {}
    if args.stripe_webhook_secret:
        gateway["PAYGATE_STRIPE_WEBHOOK_SECRETS"] = ",".join(args.stripe_webhook_secret)
    for key in args.stripe_api_key or []:
        mode = _stripe_key_mode(key)
        variable = f"PAYGATE_STRIPE_API_KEY_{mode.upper()}"
        if variable in gateway:
            raise SystemExit(f"paygate secrets generate: two --stripe-api-key of mode {mode}")
        gateway[variable] = key
    for mode in ("test", "live"):
        onecom = getattr(args, f"onecom_webhook_secret_{mode}")
        if onecom:
            gateway[f"PAYGATE_ONECOM_WEBHOOK_SECRETS_{mode.upper()}"] = onecom
        key = getattr(args, f"onecom_api_key_{mode}")
        if key:
            gateway[f"PAYGATE_ONECOM_API_KEY_{mode.upper()}"] = key
        # The web3 notifier is the operator's own: paygate picks its secrets, and the notifier of each mode's
        # chain is given that mode's.
        web3 = getattr(args, f"web3_webhook_secret_{mode}") or _whsec()
        gateway[f"PAYGATE_WEB3_WEBHOOK_SECRETS_{mode.upper()}"] = web3
    for provider in ("onecom", "web3"):
        test = gateway.get(f"PAYGATE_{provider.upper()}_WEBHOOK_SECRETS_TEST")
        if test is not None and test == gateway.get(f"PAYGATE_{provider.upper()}_WEBHOOK_SECRETS_LIVE"):
            raise SystemExit(
                f"paygate secrets generate: one {provider} webhook secret for both modes would let a test "
                "signer make live events"
            )
    has_key = "PAYGATE_ONECOM_API_KEY_TEST" in gateway or "PAYGATE_ONECOM_API_KEY_LIVE" in gateway
    if has_key != bool(args.onecom_api_base):
        raise SystemExit(
            "paygate secrets generate: --onecom-api-key-test/-live and --onecom-api-base go together"
        )
    if args.onecom_api_base:
        if not args.onecom_api_base.startswith("https://"):
            raise SystemExit(
                "paygate secrets generate: --onecom-api-base must be https:// (egress allows 443)"
            )
        # Not a secret, but the key's other half: the gateway refuses to start with one and not the other.
        gateway["PAYGATE_ONECOM_API_BASE"] = args.onecom_api_base
    return gateway


def _check_webhook_secrets(args: argparse.Namespace) -> None:
    """Refuse a webhook secret the gateway would refuse at start-up (its own checks, so the two agree),
    naming the flag and never the value."""
    given: list[tuple[str, str | None, Callable[[str], None]]] = [
        ("--stripe-webhook-secret", secret, check_stripe_webhook_secret)
        for secret in args.stripe_webhook_secret or []
    ]
    for provider in ("onecom", "web3"):
        for mode in ("test", "live"):
            secret = getattr(args, f"{provider}_webhook_secret_{mode}")
            given.append((f"--{provider}-webhook-secret-{mode}", secret, check_standard_webhooks_secret))
    for flag, secret, check in given:
        if secret is None:
            continue
        try:
            check(secret)
        except ValueError as problem:
            raise SystemExit(f"paygate secrets generate: {flag} {problem}") from None


def _stripe_key_mode(key: str) -> str:
    for prefix in ("sk_", "rk_"):
        for mode in ("test", "live"):
            if key.startswith(f"{prefix}{mode}_"):
                return mode
    raise SystemExit(
        "paygate secrets generate: a --stripe-api-key starts sk_test_, sk_live_, rk_test_ or rk_live_"
    )


def _smtp_credentials(args: argparse.Namespace) -> dict[str, str]:
    """PAYGATE_SMTP_USERNAME / PAYGATE_SMTP_PASSWORD from --smtp-username and --smtp-password-file (a file, or
    "-" for stdin: a password on the command line would show in `ps` and the shell's history)."""
    if not args.smtp_username and not args.smtp_password_file:
        return {}
    if not args.smtp_username or not args.smtp_password_file:
        raise SystemExit("paygate secrets generate: --smtp-username and --smtp-password-file go together")
    if args.smtp_password_file == "-":
        password = sys.stdin.read()
    else:
        password = _read_flag_file("--smtp-password-file", args.smtp_password_file)
    password = password.removesuffix("\n").removesuffix("\r")
    for name, value in (("--smtp-username", args.smtp_username), ("the SMTP password", password)):
        if not value or any(c in value for c in "\r\n\x00"):
            # Never echo the value: only what is wrong with it.
            raise SystemExit(f"paygate secrets generate: {name} is empty or holds a line break or NUL")
    return {"PAYGATE_SMTP_USERNAME": args.smtp_username, "PAYGATE_SMTP_PASSWORD": password}


def _scalar(value: object) -> str:
    # A JSON string is a YAML double-quoted scalar with the same value.
    return json.dumps(value)


def to_yaml(objects: list[dict[str, object]]) -> str:
    docs = []
    for obj in objects:
        meta = obj["metadata"]
        assert isinstance(meta, dict)
        lines = [
            f"apiVersion: {obj['apiVersion']}",
            f"kind: {obj['kind']}",
            "metadata:",
            f"  name: {_scalar(meta['name'])}",
            f"  namespace: {_scalar(meta['namespace'])}",
            "  labels:",
            *(f"    {key}: {_scalar(value)}" for key, value in meta["labels"].items()),
            f"type: {_scalar(obj['type'])}",
            "stringData:",
        ]
        data = obj["stringData"]
        assert isinstance(data, dict)
        lines += [f"  {_scalar(key)}: {_scalar(value)}" for key, value in data.items()]
        docs.append("\n".join(lines) + "\n")
    return "---\n" + "---\n".join(docs)


def _read_flag_file(flag: str, path: str) -> str:
    """The text of a file a flag names, or one line naming the flag (the OSError's own text says why)."""
    try:
        return Path(path).read_text()
    except OSError as error:
        raise SystemExit(f"paygate secrets generate: {flag} {path}: cannot read it ({error})") from None
    except UnicodeDecodeError:
        # Not the decoder's message: it quotes a byte of what may be a password.
        raise SystemExit(f"paygate secrets generate: {flag} {path}: is not UTF-8 text") from None


def _write_private(path: str, text: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as error:
        raise SystemExit(f"paygate secrets generate: --role-sql {path}: cannot write it ({error})") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="secrets_command", required=True)
    gen = sub.add_parser("generate", help="print every Secret the deploy/ overlays need, as Kubernetes YAML")
    gen.add_argument("--overlay", choices=OVERLAYS, default="prod")
    gen.add_argument("--namespace", default="paygate")
    gen.add_argument(
        "--db-host", help="database host (default: the CloudNativePG rw Service; required for external-db)"
    )
    gen.add_argument("--db-port", type=int, default=5432)
    gen.add_argument("--db-name", default=DATABASE)
    gen.add_argument(
        "--db-ca-file", help="external-db: PEM CA certificate that signed the database's certificate"
    )
    gen.add_argument(
        "--db-sslmode-require",
        action="store_true",
        help="encrypt without verifying the database's certificate (not recommended)",
    )
    gen.add_argument(
        "--role-sql",
        help="external-db: write the ALTER ROLE ... PASSWORD statements to this file (mode 0600)",
    )
    gen.add_argument(
        "--stripe-webhook-secret",
        action="append",
        help="Stripe's whsec_... of an endpoint (Stripe issues it); repeat for the test and the live endpoint",
    )
    gen.add_argument(
        "--stripe-api-key",
        action="append",
        help="sk_/rk_ test or live key for Stripe Checkout and refunds, one per mode (repeat); off without",
    )
    for mode in ("test", "live"):
        gen.add_argument(
            f"--onecom-webhook-secret-{mode}",
            help=f"One.com's Standard Webhooks secret (whsec_...) for {mode}",
        )
        gen.add_argument(f"--onecom-api-key-{mode}", help=f"One.com's API key for {mode} payments")
        gen.add_argument(
            f"--web3-webhook-secret-{mode}",
            help=f"your {mode} chain notifier's whsec_ secret (default: a new one)",
        )
    gen.add_argument("--onecom-api-base", help="One.com's API base URL (https); with an --onecom-api-key-*")
    # Replaced by the flags above, which name their mode; refused with a message saying so.
    for flag in ("--onecom-webhook-secret", "--onecom-api-key", "--web3-webhook-secret"):
        gen.add_argument(flag, help=argparse.SUPPRESS)
    gen.add_argument(
        "--chain",
        nargs=3,
        action="append",
        metavar=("MODE", "CHAIN_ID", "RPC_URL"),
        help="an on-chain payments node for mode test or live (repeatable); makes the Secret paygate-chain",
    )
    gen.add_argument("--jwt-kid", help="kid of the first JWT signing key (default: today's date)")
    gen.add_argument("--smtp-username", help="SMTP AUTH user name (makes the Secret paygate-smtp)")
    gen.add_argument(
        "--smtp-password-file", help='file holding the SMTP password ("-": stdin); with --smtp-username'
    )

    enc = sub.add_parser(
        "encryption-key",
        help="print one new PAYGATE_KEYS_ENCRYPTION_KEYS / PAYGATE_SESSION_ENCRYPTION_KEYS entry",
    )
    enc.add_argument("--version", type=int, required=True, help="1..255, higher than every configured one")
    jwt = sub.add_parser("jwt-key", help="print one new PAYGATE_JWT_SIGNING_KEYS entry as JSON")
    jwt.add_argument("--kid", required=True)


def run(args: argparse.Namespace) -> int:
    if args.secrets_command == "encryption-key":
        if not 1 <= args.version <= 255:
            print("paygate secrets: --version must be 1..255", file=sys.stderr)
            return 2
        print(encryption_key(args.version))
        return 0
    if args.secrets_command == "jwt-key":
        if not JWT_KID.fullmatch(args.kid):
            print(f"paygate secrets: --kid {JWT_KID_RULE}", file=sys.stderr)
            return 2
        print(json.dumps(jwt_key(args.kid)))
        return 0
    objects, role_sql = build_secrets(args)
    if role_sql:
        if not args.role_sql:
            print(
                "paygate secrets generate: --role-sql FILE is required for external-db: it receives the "
                "passwords to set on your database's roles",
                file=sys.stderr,
            )
            return 2
        _write_private(args.role_sql, "\n".join(role_sql) + "\n")
    sys.stdout.write(to_yaml(objects))
    return 0
