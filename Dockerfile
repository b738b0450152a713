# Tierline: the routing service on a slim Python base, run as a non-root user.
# Build: docker build -t tierline .   Run: docker run -p 8080:8080 -e TIERLINE_API_TOKEN=… -e TIERLINE_ADMIN_TOKEN=… tierline
#
# BASE_IMAGE: any Debian-like image with python3 >= 3.11 and its venv module (the default is
# the public slim image; CI, which reaches no image registry, passes a Debian bookworm base it
# built itself with debootstrap: see deploy/container-check).
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Build stage: a venv at /opt/tierline with tierline and its runtime dependencies only, the
# dependencies at the exact versions and hashes of requirements/service.txt (the lock).
# Wheels: if the build context holds build/wheels/ (made on the host with
# `pip download --require-hashes -r requirements/service.txt` and `pip wheel --no-deps .`, as
# deploy/container-check does because pip inside a build cannot reach PyPI there), everything
# is installed from those wheels, offline. Without it (a plain `docker build .` anywhere else)
# pip fetches the locked dependencies from PyPI and builds the project with the locked
# setuptools (requirements/build.txt). README.md is copied along only so that the COPY has a
# source when build/wheels/ does not exist.
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY requirements/service.txt requirements/build.txt ./requirements/
COPY pyproject.toml README.md ./
COPY router ./router
COPY tiers ./tiers
COPY queue ./queue
COPY admin ./admin
COPY README.md build/wheel[s] /wheels/
RUN python3 -m venv /opt/tierline \
    && if ls /wheels/*.whl >/dev/null 2>&1; then \
         /opt/tierline/bin/python -m pip install --no-cache-dir --no-index --find-links /wheels \
           --require-hashes -r requirements/service.txt \
         && /opt/tierline/bin/python -m pip install --no-cache-dir --no-index --no-deps /wheels/tierline-*.whl; \
       else \
         /opt/tierline/bin/python -m pip install --no-cache-dir --require-hashes \
           -r requirements/service.txt -r requirements/build.txt \
         && /opt/tierline/bin/python -m pip install --no-cache-dir --no-deps --no-build-isolation /src; \
       fi \
    && /opt/tierline/bin/python -m pip uninstall --yes pip setuptools wheel packaging

# Runtime stage: the base plus the venv; no compiler, no pip cache, no sources, no tests.
FROM ${BASE_IMAGE}
# The data directory (the memory store's call history, a SQLite file) belongs to that user: a
# volume, so the history outlives the container; a volume mounted there anew takes its owner.
RUN useradd --system --no-log-init --uid 10001 --no-create-home --shell /usr/sbin/nologin tierline \
    && install -d -o 10001 -g tierline -m 0750 /var/lib/tierline
COPY --from=build /opt/tierline /opt/tierline
USER 10001
# Listen on every interface of the container; store and tokens come from the environment.
# Without TIERLINE_API_TOKEN and TIERLINE_ADMIN_TOKEN the service refuses this bind unless
# TIERLINE_INSECURE=1 says an open service is wanted. Logs go to stdout/stderr, unbuffered.
# PATH is spelled out whole: a base made with `podman import` carries no PATH of its own.
ENV PATH=/opt/tierline/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    TIERLINE_HOST=0.0.0.0 \
    TIERLINE_PORT=8080 \
    TIERLINE_STORE=memory \
    TIERLINE_DATA_DIR=/var/lib/tierline
VOLUME ["/var/lib/tierline"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/opt/tierline/bin/python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TIERLINE_PORT', '8080'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["/opt/tierline/bin/tierline", "serve"]
