# syntax=docker/dockerfile:1
# driftmon container image.
#
#   docker build -t driftmon:0.1.0 .
#   docker run --rm -p 9108:9108 \
#     -v "$PWD/config.yaml:/etc/driftmon/config.yaml:ro" driftmon:0.1.0
#
# Config:  /etc/driftmon/config.yaml (mount it; `driftmon check-config` validates it)
# State:   /var/lib/driftmon (working directory; mount a volume to keep it)
# Port:    9108 (/metrics, /healthz, /readyz, /status); keep `http.port` at 9108 or
#          change EXPOSE and the HEALTHCHECK below with it.

# One base for both stages: the venv's interpreter symlinks must resolve in the
# final image. Pinned to a patch release; bump it deliberately.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- builder: resolve and install driftmon and its wheels into a venv --------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# numpy, scipy, numba/llvmlite, confluent-kafka and orjson all ship manylinux
# wheels for CPython 3.11, so no compiler is needed even here.
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN /opt/venv/bin/pip install --no-cache-dir . \
 && /opt/venv/bin/pip check

# --- final: the venv, a non-root user and a pre-warmed Numba cache -----------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="driftmon" \
      org.opencontainers.image.description="Streaming drift monitoring: Kafka in, Prometheus metrics and retrain webhooks out." \
      org.opencontainers.image.licenses="Apache-2.0"

# NUMBA_CACHE_DIR: compiled kernels are cached there at build time (below) so the
# first start does not JIT. It must stay writable, because Numba checks that before
# it reads the cache: on a read-only root filesystem mount an emptyDir there and seed
# it from the image (deploy/kubernetes/ does this with an init container).
# PROMETHEUS_DISABLE_CREATED_SERIES: one series fewer per counter and histogram child;
# nothing reads the _created series.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NUMBA_CACHE_DIR=/var/cache/driftmon/numba \
    PROMETHEUS_DISABLE_CREATED_SERIES=true

RUN groupadd --system --gid 10001 driftmon \
 && useradd --system --no-log-init --uid 10001 --gid driftmon \
      --home-dir /var/lib/driftmon --shell /usr/sbin/nologin driftmon \
 && mkdir -p /etc/driftmon /var/lib/driftmon /var/cache/driftmon/numba \
 && chown -R driftmon:driftmon /var/lib/driftmon /var/cache/driftmon

COPY --from=builder /opt/venv /opt/venv

# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/driftmon

# Compile every kernel signature into NUMBA_CACHE_DIR, as the runtime user, and fail
# the build if nothing was cached. The cache is specific to this image's files and
# the build machine's CPU model; on another CPU model Numba recompiles on first use.
RUN python -c "from monitor.stats import warmup; from monitor.ingest.decode.scanner import warmup as scan; \
from monitor.performance.warmup import warmup as perf; scan(); perf(); print(f'numba {warmup():.1f} s')" \
 && test -n "$(find /var/cache/driftmon/numba -name '*.nbi' -print -quit)"

EXPOSE 9108
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4)"]

ENTRYPOINT ["driftmon"]
CMD ["run", "--config", "/etc/driftmon/config.yaml"]
