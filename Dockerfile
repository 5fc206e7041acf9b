# One image for every process of dagsapp; compose.yaml (or any orchestrator) picks the command:
#   gunicorn config.wsgi            the web server (dashboard, /api/v2/, /metrics)
#   python manage.py scheduler      python manage.py dag_processor
#   celery -A config worker         python manage.py migrate / ensure_admin (one-off)
# Settings come from the environment (README.md, docs/deploy.md); with DATABASE_URL and
# CELERY_BROKER_URL set, no embedded database or broker is started.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGS_FOLDER=/opt/dagsapp/dags \
    VAR_DIR=/var/lib/dagsapp

# graphviz: the Graph view's layout. (chromium is for the browser tests only.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends graphviz \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/dagsapp
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY config config
COPY dagsapp dagsapp
COPY runs runs
COPY templates templates
COPY static static
COPY manage.py .
# The example DAGs; a deployment mounts its own folder here, at the same path on every host.
COPY dags dags

RUN useradd --system --home-dir /var/lib/dagsapp --create-home dagsapp \
    && mkdir -p /var/lib/dagsapp/prometheus && chown -R dagsapp /var/lib/dagsapp
USER dagsapp

EXPOSE 8000
CMD ["gunicorn", "config.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "4", "--timeout", "120"]
