# leadml in a container: the CLI as the entry point, models in an MLflow store you mount or
# point to (MLFLOW_TRACKING_URI). Build: docker build -t leadml .
# Run:   docker run --rm -v /data:/data -e MLFLOW_TRACKING_URI=http://mlflow:5000 leadml \
#          score /data/nightly.csv --output /data/scored.csv --rules /data/bant.yaml
FROM python:3.11-slim
# Java only for --engine spark (pip extra "spark"); leave it out for the local engine.
ARG WITH_SPARK=false
RUN if [ "$WITH_SPARK" = "true" ]; then apt-get update \
      && apt-get install -y --no-install-recommends default-jre-headless \
      && rm -rf /var/lib/apt/lists/*; fi
WORKDIR /srv/leadml
COPY pyproject.toml README.md ./
COPY src ./src
COPY pipelines ./pipelines
RUN pip install --no-cache-dir . && if [ "$WITH_SPARK" = "true" ]; then \
      pip install --no-cache-dir ".[spark]"; fi
ENV LEADML_HOME=/var/lib/leadml
RUN useradd --create-home leadml && mkdir -p /var/lib/leadml && chown leadml /var/lib/leadml
USER leadml
ENTRYPOINT ["leadml"]
CMD ["--help"]
