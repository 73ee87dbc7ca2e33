"""Mutual TLS between services, configured by file paths.

When PAYGATE_TLS_CERT_FILE, PAYGATE_TLS_KEY_FILE and PAYGATE_TLS_CA_FILE are set, servers require a client
certificate signed by the CA and clients present theirs. Servers re-read the files on each handshake when
they change, and client channels (paygate_runtime.grpc_client) open a new channel with the new files when they
change, so cert-manager's rotation needs no restart on either side.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from paygate_runtime.config import ConfigError, Env


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes(), self.ca_file.read_bytes()

    def fingerprint(self) -> tuple[tuple[int, int, int, int], ...]:
        """What changes when any of the files is replaced or rewritten: a Secret volume swaps a symlink to new
        files (new inode), other tools rewrite in place (new mtime, often a new size). A stat, no read."""
        stats = (os.stat(p) for p in (self.cert_file, self.key_file, self.ca_file))
        return tuple((s.st_ino, s.st_dev, s.st_size, s.st_mtime_ns) for s in stats)


def tls_from_env(env: Env) -> TlsFiles | None:
    names = ("PAYGATE_TLS_CERT_FILE", "PAYGATE_TLS_KEY_FILE", "PAYGATE_TLS_CA_FILE")
    values = [env.optional(n) for n in names]
    if not any(values):
        return None
    for name, value in zip(names, values, strict=True):
        if not value:
            raise ConfigError(name, "must be set together with the other PAYGATE_TLS_* files")
        if not Path(value).is_file():
            raise ConfigError(name, f"file not found: {value}")
    cert, key, ca = (Path(v) for v in values if v)
    files = TlsFiles(cert, key, ca)
    check_pem(files)
    return files


def check_pem(files: TlsFiles) -> None:
    """Parse the files now: grpc reads them only at the first handshake, so a bad key would otherwise make a
    client service fail at its first request instead of at start-up. Messages never quote the contents."""
    try:
        certificates = x509.load_pem_x509_certificates(files.cert_file.read_bytes())
    except (ValueError, OSError):
        raise ConfigError("PAYGATE_TLS_CERT_FILE", "does not hold a PEM certificate") from None
    try:
        x509.load_pem_x509_certificates(files.ca_file.read_bytes())
    except (ValueError, OSError):
        raise ConfigError("PAYGATE_TLS_CA_FILE", "does not hold a PEM CA certificate") from None
    try:
        key = serialization.load_pem_private_key(files.key_file.read_bytes(), password=None)
    except (ValueError, TypeError, OSError, UnsupportedAlgorithm):
        raise ConfigError("PAYGATE_TLS_KEY_FILE", "does not hold an unencrypted PEM private key") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(serialization.Encoding.DER, public) != certificates[
        0
    ].public_key().public_bytes(serialization.Encoding.DER, public):
        raise ConfigError(
            "PAYGATE_TLS_KEY_FILE", "is not the private key of PAYGATE_TLS_CERT_FILE's certificate"
        )


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    state: dict[str, object] = {"fingerprint": None, "config": None}

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        fingerprint = files.fingerprint()
        if fingerprint == state["fingerprint"]:
            return None  # unchanged: keep the current configuration
        cert, key, ca = files.read()
        state["fingerprint"] = fingerprint
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    initial = fetch()
    assert initial is not None
    return grpc.dynamic_ssl_server_credentials(
        initial,
        fetch,  # type: ignore[arg-type]  # grpc keeps the current configuration on None; the stubs omit None
        require_client_authentication=True,
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    """Credentials from the files as they are now. grpc-python has no client-side certificate fetcher (unlike
    `dynamic_ssl_server_credentials`), so a channel keeps these for its life: grpc_client.DeadlineChannel
    opens a new channel when the files change."""
    cert, key, ca = files.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
