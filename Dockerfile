# cvi-autoscaler as a container (sidecar or standalone). Build: make image (or docker build -t
# cvi-autoscaler .); make image-test builds it and runs its checks. Runs as a non-root user on a
# read-only root filesystem: mount the config at /etc/cvi-autoscaler/cvi-autoscaler.toml, a volume
# at /var/lib/cvi-autoscaler (state) and a tmpfs at /tmp. Every config key can be overridden with
# CVI_AUTOSCALER__SECTION__KEY. Logs: JSON on stdout.
#
# The base is the public Python image on Debian bookworm, pinned by tag; pin a digest in your own
# build with --build-arg BASE_IMAGE=python:3.12-slim-bookworm@sha256:<digest>. Without a registry,
# tools/image/base.sh makes a stand-in of the same Debian release (see docs/operations.md).
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
# Names the untagged build-stage image, so that make image-test can remove its old copies.
LABEL cvi-autoscaler.stage="build"
# Set (to anything) to install only from wheels in build/wheelhouse/ of the build context, made on
# the host for the base's Python (tools/image/image-test.sh does), with no package index.
ARG WHEELHOUSE=""
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY scaler ./scaler
COPY policies ./policies
# pyproject.toml only makes the copy valid when the context holds no wheelhouse.
COPY pyproject.toml build/wheelhouse* /wheelhouse/
# tzdata from PyPI on every platform: zoneinfo needs the IANA database for schedules whatever the
# base image carries.
RUN python -m venv /opt/cvi-autoscaler \
    && /opt/cvi-autoscaler/bin/pip install --no-cache-dir \
        ${WHEELHOUSE:+--no-index --find-links /wheelhouse} /src "tzdata>=2024.1" \
    && /opt/cvi-autoscaler/bin/python -m compileall -q /opt/cvi-autoscaler/lib \
    && chmod -R go-w /opt/cvi-autoscaler

FROM ${BASE_IMAGE}
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
# Owned by root and not writable by the user the daemon runs as.
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
# Last, so that a new commit or build time rebuilds no other layer. Filled in by make image:
# the package version, the git commit, the repository URL (when git knows one), the build time.
ARG VERSION="" REVISION="" SOURCE="" CREATED=""
# Podman's build cache keys a LABEL on its text, not on the arguments it expands (buildah keeps
# ARG values out of the history and only a RUN's history carries them: containers/buildah#3609,
# #5501); without this step a new commit or build time got the previous build's labels.
RUN : "$VERSION $REVISION $SOURCE $CREATED"
LABEL org.opencontainers.image.title="cvi-autoscaler" \
      org.opencontainers.image.description="Keeps a Pexip CVI for Microsoft Teams deployment in Azure sized to its call load" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.created="${CREATED}"
