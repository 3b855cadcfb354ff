# Serving image: onnxruntime + tokenizers + FastAPI and the shipped bundle. No torch, no transformers.
# BASE_IMAGE must provide python3 (3.11) with venv; `make image-test` builds one locally with debootstrap.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY serve ./serve
RUN /opt/venv/bin/pip install --no-compile . && /opt/venv/bin/python -c "import serve.app" && /opt/venv/bin/intima serve --help >/dev/null

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin intima \
    && mkdir -p /var/lib/intima && chown intima /var/lib/intima
COPY --from=build /opt/venv /opt/venv
COPY models /app/models
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    INTIMA_HOST=0.0.0.0 \
    INTIMA_PORT=8000 \
    INTIMA_BUNDLE=/app/models \
    INTIMA_ANNOTATIONS_DB=/var/lib/intima/annotations.sqlite3
USER intima
WORKDIR /app
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('INTIMA_PORT', '8000'), timeout=2)"]
CMD ["intima", "serve"]
