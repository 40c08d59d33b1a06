# The voiceagent service: AudioSocket server, API and dialer in one process (see docs/asterisk.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

# espeak-ng: fallback voice and test speech; libgomp1: onnxruntime's OpenMP runtime.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY voiceagent ./voiceagent
COPY dialplans ./dialplans
COPY models ./models
RUN pip install .

RUN useradd --create-home --uid 10001 voiceagent && mkdir -p /data && chown voiceagent /data
USER voiceagent
ENV VOICEAGENT_DATA_DIR=/data \
    VOICEAGENT_DIALPLANS_DIR=/app/dialplans

# 8080: HTTP API; 9092: AudioSocket (reached by Asterisk over the compose network only).
EXPOSE 8080 9092
CMD ["voiceagent", "serve"]
