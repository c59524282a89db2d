# The gateway service. The kiosk runs on the door's own machine, not in here.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends libzbar0 libgl1 libglib2.0-0 \
 && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 checkin
WORKDIR /app
COPY pyproject.toml README.md ./
COPY checkin_core ./checkin_core
COPY service ./service
COPY scanner ./scanner
# Not editable: the package carries its schema, migrations, templates and static files.
RUN pip install --no-cache-dir ".[server]" && chown -R checkin /app
# A new named volume takes the owner of this folder: the service must write its keys here.
RUN mkdir -p /data && chown checkin /data

USER checkin
ENV CHECKIN_HOST=0.0.0.0 CHECKIN_PORT=8080 CHECKIN_DATA_DIR=/data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)" || exit 1
CMD ["sh", "-c", "checkin-gateway migrate && exec checkin-gateway serve"]
