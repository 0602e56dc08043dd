# syntax=docker/dockerfile:1
# One image for the four services; the command picks one:
#   omni-gateway | omni-presence | omni-identity | omni-routing   [serve (default) | migrate]
# Build: docker build -t omnirouter:dev .

# uv, pinned to the version the Makefile uses.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# Builder and runtime share the exact base, so the venv's interpreter path is valid in both.
FROM python:3.12.12-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Byte-compile at build time (read-only root at run time); copy, not hard-link, out of uv's cache mount;
# the venv must use the image's own Python, which the runtime stage has at the same path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.12 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first, from the lock only: this layer is reused until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY shared ./shared
COPY services ./services
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.12.12-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="omnirouter" \
      org.opencontainers.image.description="Kafka-native omnichannel routing suite" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/omnirouter/omnirouter"
# A fixed, high UID/GID that matches the Helm chart's runAsUser and no home directory or shell.
RUN groupadd --system --gid 10001 omni \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin omni
# Root-owned and read-only for the service user: the code cannot be rewritten at run time.
COPY --from=builder /opt/venv /opt/venv
# The example routing configuration; Kubernetes mounts a ConfigMap over /etc/omnirouter.
COPY deploy/config/routing.yaml /etc/omnirouter/routing.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json \
    ROUTING_CONFIG=/etc/omnirouter/routing.yaml
USER 10001:10001
EXPOSE 8080 8081 8082 8083
# The liveness endpoint on whichever port this service listens (HTTP_PORT, else the gateway's 8080).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HTTP_PORT', '8080'), timeout=2)"]
# Exec form: the service is PID 1 and receives SIGTERM itself (graceful drain, commit, leave the group).
CMD ["omni-gateway", "serve"]
