# mop-canary controller image: `canary` is the entrypoint (`canary run --leader-elect` in manifests/).
# Build: docker build -t ghcr.io/mop-canary/mop-canary:0.1.0 .

# ---- build: a wheel and every dependency's wheel (compilers stay in this stage) ----
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY canary ./canary
RUN python -m pip wheel --wheel-dir /wheels .

# ---- runtime: the wheels installed into a venv, no compilers, non-root ----
FROM python:3.11.14-slim-bookworm
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mop-canary" \
      org.opencontainers.image.description="Kubernetes canary controller guarded by Mimir and Tempo" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/mop-canary/mop-canary" \
      org.opencontainers.image.vendor="mop-canary"
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/canary/bin:$PATH
COPY --from=build /wheels /wheels
RUN python -m venv /opt/canary \
 && /opt/canary/bin/pip install --no-index --find-links=/wheels mop-canary \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 canary \
 && useradd --system --uid 10001 --gid canary --no-create-home --shell /usr/sbin/nologin canary
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["canary"]
CMD ["run", "--leader-elect"]
