# flowrt image: the runtime, the `flowrt` CLI and the Celery app (`celery -A tasks ...`).
# One image serves every role in docker-compose.yml: migrate, worker, beat and flower.
FROM python:3.11-slim

# PYTHONHASHSEED: every worker must iterate sets in the same order, or a replayed flow
# could diverge from its journal (see DESIGN.md, "Determinism guard"). Do not change it
# while executions are in flight.
ENV PYTHONHASHSEED=0 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# The unprivileged user the processes run as; its home holds FLOWRT_HOME (~/.flowrt) and
# beat's schedule file. The code under /app stays owned by root, read-only to it.
RUN groupadd --system --gid 10001 flowrt \
    && useradd --system --uid 10001 --gid flowrt --create-home --home-dir /home/flowrt \
       --shell /usr/sbin/nologin flowrt

WORKDIR /app

COPY pyproject.toml README.md ./
COPY flowrt ./flowrt
COPY tasks ./tasks
COPY config ./config

RUN pip install . \
    && rm -rf build ./*.egg-info

USER flowrt

# The services in docker-compose.yml give the command; alone, the image runs a worker.
CMD ["celery", "-A", "tasks", "worker", "--loglevel", "INFO"]
