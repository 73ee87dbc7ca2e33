# syntax=docker/dockerfile:1
# One image for every paygate service: `docker run IMAGE session|billing|keys|gateway`.
#
# Base: python:3.11-slim (Debian trixie, Python 3.11.16), pinned by its multi-arch index digest.
# Digest as recorded publicly for the tag python:3.11-slim pushed 2026-08-16 (resolved 2026-08-18).
# Re-resolve with `docker buildx imagetools inspect python:3.11-slim` when bumping, and update both
# stages together: the venv copied between them expects the same interpreter path.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first, so source edits reuse this layer: only what the services run with
# (requirements-runtime.lock: no pytest, playwright, ruff, embedded PostgreSQL, eth-tester or
# grpcio-tools), each pinned and checked against its sha256 (scripts/lock_runtime.py makes the file
# from requirements.lock). Every pinned package ships a cp311 manylinux wheel; if one ever needs a
# compiler, install it here (this stage is discarded), never in the runtime stage.
COPY requirements-runtime.lock ./
RUN pip install --require-hashes --no-deps --only-binary=:all: -r requirements-runtime.lock
# Then the project itself, as a wheel with no further dependency resolution.
COPY pyproject.toml ./
COPY paygate_runtime ./paygate_runtime
COPY protos ./protos
COPY session_service ./session_service
COPY billing_service ./billing_service
COPY keys_service ./keys_service
COPY webhook_gateway ./webhook_gateway
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && pip install --no-deps /wheels/*.whl \
 && python -c "import paygate_runtime.serve, paygate_runtime.cli.migrate_cmd, paygate_runtime.cli.secrets_cmd, \
paygate_runtime.cli.merchant_cmd, session_service.entrypoints.main, billing_service.entrypoints.main, \
keys_service.entrypoints.main, webhook_gateway.entrypoints.main" \
 && python -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('paygate_dev') is not None)"
# paygate_dev (`paygate up`, the dev commands and fixtures) is never copied, so never in the image; the last
# line above fails the build if it ever were.

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
# OCI image annotations (https://github.com/opencontainers/image-spec/blob/main/annotations.md); pass
# --build-arg VERSION=... --build-arg REVISION=$(git rev-parse HEAD) when building a release.
LABEL org.opencontainers.image.title="paygate" \
      org.opencontainers.image.description="Payment-session backend: one image for the session, billing, keys and gateway services" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYGATE_HOME=/tmp/paygate
# A fixed numeric uid/gid so Kubernetes' runAsNonRoot/runAsUser: 10001 can be verified.
RUN groupadd --system --gid 10001 paygate \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin paygate
# Owned by root and read-only to the service user: the root filesystem is mounted read-only anyway.
COPY --from=builder /opt/venv /opt/venv
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 50051 50052 50053 9101 9102 9103 9104
ENTRYPOINT ["paygate", "serve"]
CMD ["gateway"]
