# Tierline: the routing service on a slim Python base, run as a non-root user.
# Build: docker build -t tierline .   Run: docker run -p 8080:8080 -e TIERLINE_API_TOKEN=… -e TIERLINE_ADMIN_TOKEN=… tierline
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY router ./router
COPY tiers ./tiers
COPY queue ./queue
COPY admin ./admin
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin tierline
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-compile /wheels/*.whl && rm -rf /wheels
USER 10001
# Listen on every interface of the container; store and tokens come from the environment.
# Without TIERLINE_API_TOKEN and TIERLINE_ADMIN_TOKEN the service refuses this bind unless
# TIERLINE_INSECURE=1 says an open service is wanted.
ENV PYTHONUNBUFFERED=1 \
    TIERLINE_HOST=0.0.0.0 \
    TIERLINE_PORT=8080 \
    TIERLINE_STORE=memory
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('TIERLINE_PORT', '8080'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["tierline", "serve"]
