# cvi-autoscaler as a container (sidecar or standalone). Build: docker build -t cvi-autoscaler .
# Runs as a non-root user on a read-only root filesystem: mount the config at
# /etc/cvi-autoscaler/cvi-autoscaler.toml, a volume at /var/lib/cvi-autoscaler (state) and a tmpfs
# at /tmp. Every config key can be overridden with CVI_AUTOSCALER__SECTION__KEY. Logs: JSON on stdout.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY scaler ./scaler
COPY policies ./policies
RUN python -m venv /opt/cvi-autoscaler \
    && /opt/cvi-autoscaler/bin/pip install --no-cache-dir /src \
    && /opt/cvi-autoscaler/bin/python -m compileall -q /opt/cvi-autoscaler/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="cvi-autoscaler" \
      org.opencontainers.image.description="Keeps a Pexip CVI for Microsoft Teams deployment in Azure sized to its call load" \
      org.opencontainers.image.licenses="MIT"
ENV PATH=/opt/cvi-autoscaler/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STATE_DIRECTORY=/var/lib/cvi-autoscaler \
    CVI_AUTOSCALER__DAEMON__LOG_FORMAT=json \
    CVI_AUTOSCALER__HTTP__ENABLED=true \
    CVI_AUTOSCALER__HTTP__PORT=9464
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin cvi \
    && mkdir -p /var/lib/cvi-autoscaler /etc/cvi-autoscaler \
    && chown 10001:10001 /var/lib/cvi-autoscaler \
    && chmod 0700 /var/lib/cvi-autoscaler
COPY --from=build /opt/cvi-autoscaler /opt/cvi-autoscaler
USER 10001:10001
WORKDIR /var/lib/cvi-autoscaler
VOLUME ["/var/lib/cvi-autoscaler"]
EXPOSE 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:' + os.environ.get('CVI_AUTOSCALER__HTTP__PORT', '9464') + '/healthz', timeout=4)"]
ENTRYPOINT ["cvi-autoscaler"]
CMD ["run", "--config", "/etc/cvi-autoscaler/cvi-autoscaler.toml"]
