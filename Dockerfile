# hubject-connector: a small image with the connector and nothing to build it.
# Configuration and certificates are mounted at run time, never baked in:
#   docker run -v ./config.toml:/etc/hubject-connector/config.toml:ro \
#              -v ./certs:/etc/hubject-connector/certs:ro hubject-connector

# --- build: a wheel and every dependency, compiled where needed -------------------------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY hubject_connector ./hubject_connector
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-compile . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- run: the virtual environment only, as an unprivileged user ------------------------
FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="hubject-connector" \
      org.opencontainers.image.description="CPO-side OICP 2.3 connector to Hubject" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 connector \
    && useradd --system --uid 10001 --gid connector --home-dir /var/lib/hubject-connector \
       --create-home --shell /usr/sbin/nologin connector
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONUNBUFFERED=1 \
    HUBJECT_CONNECTOR_CONFIG=/etc/hubject-connector/config.toml
WORKDIR /var/lib/hubject-connector
USER 10001:10001
# 8443: the HTTPS endpoints Hubject calls; 9090: /metrics, /healthz, /readyz;
# 8090: the embedded bus's HTTP API for the backend.
EXPOSE 8443 9090 8090
VOLUME ["/var/lib/hubject-connector"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('HUBJECT_CONNECTOR_OPS__PORT', '9090'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["hubject-connector"]
CMD ["serve"]
