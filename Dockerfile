# One image runs any certmon service by its command (`certmon scanner`, `certmon reporter`, ...).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
# WeasyPrint renders the reports' PDFs with Pango (and its fonts); nothing else comes from Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /install /usr/local
# Non-root, and nothing written outside /tmp and the data volume: the root filesystem can be read-only.
RUN useradd --system --uid 10001 --home-dir /var/lib/certmon certmon && mkdir -p /var/lib/certmon \
    && chown certmon /var/lib/certmon
USER 10001
WORKDIR /var/lib/certmon
ENV CERTMON_DATA_DIR=/var/lib/certmon CERTMON_LOG_FORMAT=json PYTHONUNBUFFERED=1
EXPOSE 8080
ENTRYPOINT ["certmon"]
CMD ["run"]
