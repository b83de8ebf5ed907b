# ECC: one image for every service; the command chooses which one runs:
#   docker run ecc python -m services.intake        (the default command)
#   docker run ecc python -m services.triage
# Only the project's runtime dependencies are installed: the `embedded` extra (Tansu broker,
# SecantusDB - GPL-2.0) and the test/deploy tools are never part of this image.
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

FROM python:3.11.14-slim-bookworm
RUN groupadd --system --gid 10001 ecc \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin ecc \
 && mkdir -p /var/lib/ecc/jwt \
 && chown -R 10001:10001 /var/lib/ecc
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY shared ./shared
COPY services ./services
COPY rules ./rules
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ECC_HTTP_HOST=0.0.0.0
USER 10001:10001
EXPOSE 8001-8010
# GET /healthz on the running service's port: the service is named by ECC_SERVICE or read from
# PID 1's command line (python -m services.<name>); the port from shared.config (ECC_<NAME>_PORT).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request as u;from shared.config import Settings;a=open('/proc/1/cmdline','rb').read().split(b'\\0');n=os.environ.get('ECC_SERVICE') or next(x.decode()[9:] for x in a if x.startswith(b'services.'));u.urlopen('http://127.0.0.1:%d/healthz'%Settings.from_env().http_port(n),timeout=4)"]
CMD ["python", "-m", "services.intake"]
