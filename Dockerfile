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

RUN useradd --create-home ocrstream
USER ocrstream
EXPOSE 6066
CMD ["ocrstream", "worker"]
