# csr-gateway image: a wheel built in one stage, installed alone into a slim runtime.
# tests/e2e/test_image_layout.py lays this file system out from the lines below and runs
# the CMD as the service user, so keep paths here and in deploy/docker/ in step.

FROM python:3.12-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/csr-gateway \
 && /opt/csr-gateway/bin/pip install /wheels/*.whl

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/csr-gateway/bin:/usr/local/bin:/usr/bin:/bin \
    HOME=/var/lib/csr-gateway \
    CSRGW_CONFIG=/etc/csr-gateway/gateway.yaml \
    CSRGW_UPSTREAM_URL=http://shop:8081 \
    CSRGW_DIRECTORY_URL=sqlite+aiosqlite:////var/lib/csr-gateway/directory.sqlite3 \
    CSRGW_SESSION_STORE=memory \
    CSRGW_REDIS_URL=redis://redis:6379/0 \
    CSRGW_TOTP_KEY=
COPY --from=build /opt/csr-gateway /opt/csr-gateway
COPY deploy/docker/gateway.yaml /etc/csr-gateway/gateway.yaml
COPY policies /etc/csr-gateway/policies
COPY deploy/docker/healthcheck.py /opt/csr-gateway/bin/csr-gateway-healthcheck
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/csr-gateway \
      --no-create-home --shell /usr/sbin/nologin csrgw \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/csr-gateway /var/lib/csr-gateway/keys
# Everything the gateway writes (signing keys, audit chain, SQLite directory) lives here;
# the rest of the file system can be mounted read-only (docker run --read-only).
VOLUME ["/var/lib/csr-gateway"]
WORKDIR /var/lib/csr-gateway
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["csr-gateway-healthcheck"]
CMD ["csr-gateway", "run", "--config", "/etc/csr-gateway/gateway.yaml"]
