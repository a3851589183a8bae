# The ocrstream worker (stream agents + web). Kafka runs in its own container (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# libgl/libglib: OpenCV (pulled in by rapidocr) needs them even headless.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 libgl1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/ocrstream
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY models ./models
RUN pip install --no-cache-dir .

# /secure: the `secure` profile's volume, which takes this owner when new (uid 1000, as the
# apache/kafka image's appuser, who reads the files the setup writes there, mode 600).
RUN useradd --create-home ocrstream && mkdir /secure && chown ocrstream /secure
USER ocrstream
EXPOSE 6066
CMD ["ocrstream", "worker"]
