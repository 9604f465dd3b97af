# ferryman: an edge router that reads Traefik v3 configuration unchanged.
#
#   docker build -t ferryman .
#   docker run -d -p 80:80 -v /var/run/docker.sock:/var/run/docker.sock:ro ferryman \
#       --entryPoints.web.address=:80 --providers.docker=true --ping=true
#
# The same flags, traefik.yml (mounted at /etc/traefik/traefik.yml) and TRAEFIK_* variables as the
# traefik image; examples/docker-compose.yml is a complete deployment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/ferryman

# Runtime dependencies first, in a layer that changes only with them: pyproject's
# [project.dependencies], at the versions pinned in requirements.lock (its test-only pins unused).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
 && pip install --no-cache-dir --constraint requirements.lock --requirement runtime.txt

# gcc only for the build of the C extension ferryman._speedups (the image's Python has its headers);
# removed again in the same layer.
COPY README.md setup.py ./
COPY src ./src
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --no-cache-dir --no-deps . \
 && apt-get purge -y --auto-remove gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* src build \
 && python -c "import ferryman._speedups" \
 && ferryman version

# web, websecure, the API/ping entry point ("traefik").
EXPOSE 80 443 8080
# Calls /ping with the configuration ferryman runs with (its flags, traefik.yml or TRAEFIK_*);
# needs ping enabled (--ping=true or `ping: {}`).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["ferryman", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["ferryman"]
