"""Mutual TLS between services, configured by file paths.

When PAYGATE_TLS_CERT_FILE, PAYGATE_TLS_KEY_FILE and PAYGATE_TLS_CA_FILE are set, servers require a client
certificate signed by the CA and clients present theirs. Servers re-read the files on each handshake when
they change, so cert-manager's rotation needs no restart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import grpc

from paygate_runtime.config import ConfigError, Env


@dataclass(frozen=True)
class TlsFiles:
    cert_file: Path
    key_file: Path
    ca_file: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        return self.cert_file.read_bytes(), self.key_file.read_bytes(), self.ca_file.read_bytes()

    def fingerprint(self) -> tuple[float, ...]:
        return tuple(os.stat(p).st_mtime for p in (self.cert_file, self.key_file, self.ca_file))


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
    return TlsFiles(cert, key, ca)


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
    return grpc.dynamic_ssl_server_credentials(initial, fetch, require_client_authentication=True)


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    cert, key, ca = files.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
