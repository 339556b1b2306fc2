# llm-atlas: the HTTP service (API, OpenAI-compatible chat, chat page) with the bundled corpus
# and its default index built in. No torch: the default embedder is numpy-only.
#
#   docker build -t llm-atlas .
#   docker run -p 8000:8000 -e LLM_ATLAS_API_KEY=change-me llm-atlas
#
# Behind a TLS-intercepting proxy, put its CA bundle at ./build-ca.crt and add
# --build-arg PIP_CERT=/build/build-ca.crt; pip uses it in the build stage only.

FROM debian:bookworm-slim AS build
ARG PIP_CERT=""
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv
WORKDIR /build
# The glob copies the CA bundle only when it is there.
COPY pyproject.toml README.md build-ca.cr[t] /build/
COPY corpus/ /build/corpus/
COPY ingest/ /build/ingest/
COPY rag/ /build/rag/
COPY server/ /build/server/
COPY bench/ /build/bench/
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
    && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
    && /opt/venv/bin/pip install --no-cache-dir . \
    && rm -f /build/build-ca.crt
# The index is built once, here, so a container answers as soon as it has loaded it. ingest exits
# non-zero when any bundled document cannot be indexed, which fails the build.
ENV LLM_ATLAS_INDEX_DIR=/app/index
RUN /opt/venv/bin/llm-atlas ingest --index /app/index


FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 fonts-noto-cjk \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 atlas \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/atlas atlas
COPY --from=build /opt/venv /opt/venv
# Owned by root: the service only reads the index.
COPY --from=build /app/index /app/index
ENV PATH=/opt/venv/bin:$PATH \
    LLM_ATLAS_INDEX_DIR=/app/index \
    PYTHONUNBUFFERED=1
# A numeric user, so runtimes that require a non-root uid can check it.
USER 10001:10001
WORKDIR /home/atlas
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["llm-atlas", "serve", "--host", "0.0.0.0", "--port", "8000"]
