# csr-gateway: one container, one YAML file.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY gateway ./gateway
RUN pip install . && useradd --system --uid 10001 --home /app gateway

COPY config ./config
COPY policies ./policies
RUN mkdir -p /app/var && chown -R gateway /app/var

USER gateway
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/_gateway/healthz', timeout=2).status == 200 else 1)"

# Listen on all interfaces inside the container; mount your own config over /app/config.
CMD ["csr-gateway", "run", "--config", "/app/config/gateway.yaml", "--host", "0.0.0.0"]
