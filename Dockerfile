# ECC: two images from this file, the same code in both; the command chooses the service.
#   docker build -t ecc .                              every service (the last stage, `runtime`)
#   docker build --target bulletin -t ecc-bulletin .   the same plus headless Chromium and CJK fonts,
#                                                      for metrics' bulletin export (PDF/PNG)
#   docker run ecc python -m services.intake        (the default command)
#   docker run ecc python -m services.triage
# Only metrics runs ecc-bulletin (deploy/services.yaml `image: bulletin`): Chromium and the fonts
# add hundreds of MB that no other service needs. Only the project's runtime dependencies are
# installed: the `embedded` extra (Tansu broker, SecantusDB - GPL-2.0) and the test/deploy tools are
# never part of an image.
#
# Base pinned to an exact patch release; pin the digest too when you build a release
# (docs/deploy.md "Upgrades": docker buildx imagetools inspect python:3.11.14-slim-bookworm).

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml ./
# project.dependencies of pyproject.toml, nothing from [project.optional-dependencies].
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile -r requirements.txt

# What both images run, listed once: the venv and the code. Each image copies it last, so a code
# change leaves the Chromium layer of ecc-bulletin cached.
FROM scratch AS app
COPY --from=build /opt/venv /opt/venv
COPY shared /app/shared
COPY services /app/services
COPY rules /app/rules

# What both images share besides: the user, the environment, the healthcheck, the default command.
FROM python:3.11.14-slim-bookworm AS base
RUN groupadd --system --gid 10001 ecc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin ecc \
 && mkdir -p /var/lib/ecc/jwt \
 && chown -R 10001:10001 /var/lib/ecc
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECC_HTTP_HOST=0.0.0.0
EXPOSE 8001-8010
# GET /healthz on the running service's port: the service is named by ECC_SERVICE or read from
# PID 1's command line (python -m services.<name>); the port from shared.config (ECC_<NAME>_PORT).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request as u;from shared.config import Settings;a=open('/proc/1/cmdline','rb').read().split(b'\\0');n=os.environ.get('ECC_SERVICE') or next(x.decode()[9:] for x in a if x.startswith(b'services.'));u.urlopen('http://127.0.0.1:%d/healthz'%Settings.from_env().http_port(n),timeout=4)"]
CMD ["python", "-m", "services.intake"]

# ecc-bulletin: headless Chromium for GET /bulletin?format=pdf|png (services/metrics/export.py) and
# Noto CJK, without which the Chinese text prints as empty boxes. Debian's chromium is not pinned:
# bookworm-security replaces each version (and drops the old one), so a release takes the current
# one. fontconfig builds the system font cache here, at build time, for the read-only root.
# /etc/chromium.d/ is sourced by Debian's /usr/bin/chromium launcher: --no-sandbox, because
# Chromium's own sandbox needs user namespaces, which the RuntimeDefault seccomp profile of
# Docker and Kubernetes refuses to an unprivileged container ("No usable sandbox!"); the container
# is the sandbox instead (non-root, no capabilities, read-only root, seccomp, no egress beyond
# Kafka/MongoDB/DNS) and the page is ECC's own escaped HTML (docs/termination-and-metrics.md).
# HOME=/tmp: the launcher and dconf write under $HOME; /tmp is the one writable directory.
FROM base AS bulletin
# hadolint ignore=DL3008,SC2016
RUN apt-get update \
 && apt-get install -y --no-install-recommends chromium fonts-noto-cjk fontconfig \
 && rm -rf /var/lib/apt/lists/* \
 && fc-cache -f \
 && printf '%s\n' '# ECC (Dockerfile, stage bulletin): the container is the sandbox.' \
      'export CHROMIUM_FLAGS="$CHROMIUM_FLAGS --no-sandbox"' > /etc/chromium.d/ecc-no-sandbox
ENV ECC_CHROMIUM=/usr/bin/chromium \
    HOME=/tmp
COPY --from=app / /
USER 10001:10001

# ecc: every other service. The last stage, so `docker build .` builds it.
FROM base AS runtime
COPY --from=app / /
USER 10001:10001
