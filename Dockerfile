# segue: the service image. Multi-stage: the build stage compiles the wheels (annoy has no
# binary wheel), the runtime stage is the base image plus a venv, run as a non-root user.
#
#   scripts/build-image                       # builds it here with buildah and smoke-tests it
#   docker build --build-arg BASE_IMAGE=python:3.11-slim-bookworm -t segue .
#
# The base must be Debian bookworm with python3 (3.11), python3-venv and ca-certificates.
# Behind a TLS-intercepting proxy, pass its CA bundle as the optional secret `pip-cert`
# (--secret id=pip-cert,src=/etc/ssl/certs/ca-certificates.crt); without it pip uses the
# image's own CAs.
#
# EXTRAS: optional dependency groups of pyproject.toml, comma-separated. EXTRAS=spark adds
# pyspark and a Java 17 runtime for `--engine spark` and the Spark operator's pipeline
# (deploy/overlays/spark); the default image has neither.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG EXTRAS=""
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends g++ python3-dev \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/segue
WORKDIR /src
# the dependency layer first: it changes only with pyproject.toml and constraints.txt
COPY pyproject.toml constraints.txt ./
RUN --mount=type=secret,id=pip-cert,required=false \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
 && python3 -c "import tomllib; import os; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; extras = [e for e in os.environ['EXTRAS'].split(',') if e]; print('\n'.join(p['dependencies'] + [r for e in extras for r in p['optional-dependencies'][e]]))" > requirements.txt \
 && /opt/segue/bin/pip install -c constraints.txt -r requirements.txt
# then the code
COPY README.md ./
COPY indexes ./indexes
COPY service ./service
RUN --mount=type=secret,id=pip-cert,required=false \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi \
 && /opt/segue/bin/pip install --no-deps . \
 && /opt/segue/bin/python -m compileall -q /opt/segue/lib

FROM ${BASE_IMAGE} AS runtime
ARG EXTRAS=""
ENV DEBIAN_FRONTEND=noninteractive
# ${java} is unquoted on purpose: it is empty or two package names (word splitting wanted)
# hadolint ignore=DL3008,SC2086
RUN java="" \
 && case ",${EXTRAS}," in *,spark,*) java="openjdk-17-jre-headless procps" ;; esac \
 && apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 libgomp1 ${java} \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 segue \
 && useradd --uid 10001 --gid segue --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin segue \
 && mkdir -p /bundles /scratch \
 && chown segue:segue /scratch
COPY --from=build /opt/segue /opt/segue
ENV PATH=/opt/segue/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    SEGUE_BUNDLES=/bundles \
    SEGUE_HOST=0.0.0.0 \
    SEGUE_PORT=8000 \
    SEGUE_WORKERS=2 \
    SEGUE_METRICS_DIR=/scratch/metrics \
    SEGUE_STORE=sqlite:////scratch/segue.db
USER 10001:10001
WORKDIR /scratch
# the bundles directory is mounted at /bundles (read-only is enough); no VOLUME instruction, so
# that a mount there is never shadowed by an anonymous volume (buildah run does that)
EXPOSE 8000
# workers, store and the rest come from the SEGUE_* environment (see the README)
CMD ["segue", "serve"]
