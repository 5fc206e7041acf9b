"""Settings for every process of the project: web, scheduler, Celery workers and tests.

Everything that differs between machines comes from the environment, read through the typed
helpers below, which refuse a value they can't parse rather than fall back to a default.
With no DATABASE_URL / CELERY_BROKER_URL, the embedded PostgreSQL and Redis are started (or
found running) here, before Django opens any connection.
"""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from config import embedded

BASE_DIR = Path(__file__).resolve().parent.parent


def env_optional(name: str) -> str | None:
    """The variable's value, with an empty value meaning unset."""
    return os.environ.get(name) or None


def env_bool(name: str, default: bool) -> bool:
    raw = env_optional(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = env_optional(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ImproperlyConfigured(f"{name}={value} is outside [{minimum}, {maximum}]")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = env_optional(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below {minimum}")
    return value


def env_path(name: str, default: Path) -> Path:
    raw = env_optional(name)
    return default if raw is None else Path(raw).expanduser().resolve()


def parse_database_url(url: str) -> dict[str, object]:
    """Django's DATABASES entry for postgres://user:password@host:port/name[?host=/socket/dir&...]."""
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL must start with postgres:// or postgresql://, not {parts.scheme!r}://"
        )
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(f"DATABASE_URL {url!r} names no database")
    try:
        port = parts.port
    except ValueError:
        raise ImproperlyConfigured(f"DATABASE_URL {url!r} has a bad port") from None
    # As in libpq, a unix socket directory, which can't go in the netloc, comes as ?host=/dir;
    # any other parameter (sslmode, ...) is handed to psycopg as is.
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    host = options.pop("host", unquote(parts.hostname or ""))
    port_option = options.pop("port", None)
    return {
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(port or port_option or ""),
        "OPTIONS": options,
    }


def _secret_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside then hard-linked into place: link() fails if the file exists, so
        # processes starting together all end up reading the one key that won.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as tmp_file:
            tmp_file.write(secrets.token_urlsafe(50))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


VAR_DIR = env_path("VAR_DIR", BASE_DIR / "var")

# Prometheus metrics (runs/metrics.py): every process of this host writes its counters under this
# folder, which prometheus-client reads from the environment when it is first imported, so it
# is set here, before any process of the project imports it. Its children inherit it.
# A test run gets a folder of its own (removed at its end by tests/conftest.py), so the dev
# server's counters never include the tests' runs.
PROMETHEUS_MULTIPROC_DIR = env_path("PROMETHEUS_MULTIPROC_DIR", VAR_DIR / (
    f"prometheus-test/{os.getpid()}" if "PYTEST_VERSION" in os.environ else "prometheus"))
PROMETHEUS_MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(PROMETHEUS_MULTIPROC_DIR)

SECRET_KEY = env_optional("DJANGO_SECRET_KEY") or _secret_key(VAR_DIR / "secret_key")
# Off unless asked for: debug pages would show settings such as the broker URL with its password.
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", *(env_optional("DJANGO_ALLOWED_HOSTS") or "").split(",")]
ALLOWED_HOSTS = [h.strip() for h in ALLOWED_HOSTS if h.strip()]

INSTALLED_APPS = [
    # Where Admins manage users and their role (runs/admin.py), at /admin/.
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    # The REST API (/api/v2/): its docs page serves Swagger UI from ninja's own static files.
    "ninja",
    "runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (gunicorn in the container image; runserver too).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.content_security_policy_middleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "config.middleware.reject_nul_middleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The user's time zone for every server-rendered time (runs/web/timezones.py).
    "runs.web.timezones.timezone_middleware",
    # Who acts, for the audit log written by runs/services.py (runs/audit.py).
    "runs.audit.audit_actor_middleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.middleware.htmx_history_middleware",
    "django_htmx.middleware.HtmxMiddleware",
]

# No inline script, event handler, eval or javascript: URL anywhere (static/js/app.js holds the
# page behaviour; htmx runs with allowEval off). Inline styles stay allowed: templates set widths
# and offsets in style attributes, and htmx adds its indicator style.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "object-src 'none'", "base-uri 'self'", "frame-ancestors 'none'",
])

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if database_url := env_optional("DATABASE_URL"):
    _database = parse_database_url(database_url)
else:
    _postgres = embedded.ensure_postgres(VAR_DIR, database="dagsapp")
    _database = {
        "NAME": "dagsapp",
        "USER": _postgres.user,
        "HOST": str(_postgres.socket_dir),
        "PORT": str(_postgres.port),
    }

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        **_database,
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
        # One test database per pytest process, so two test runs in one checkout never collide.
        "TEST": {"NAME": f"test_{_database['NAME']}_{os.getpid()}"} if "PYTEST_VERSION" in os.environ else {},
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
# Served from static/ and the apps' folders as they are, without a collectstatic step (WhiteNoise
# still looks at STATIC_ROOT, and warns in every process when it does not exist).
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_optional("DJANGO_LOG_LEVEL") or "INFO"},
}

# The engine.
# The host name a worker records on the instances it runs (Airflow's hostname_callable): the
# machine's name unless DAGSAPP_HOSTNAME names it (a container's own name is a random id).
HOSTNAME = env_optional("DAGSAPP_HOSTNAME") or socket.gethostname()
DAGS_FOLDER = env_path("DAGS_FOLDER", BASE_DIR / "dags")
MAX_MAP_LENGTH = env_int("MAX_MAP_LENGTH", 1024, minimum=0)
SCHEDULER_HEARTBEAT_SEC = env_float("SCHEDULER_HEARTBEAT_SEC", 1.0, minimum=0.0)
# The DAG processor kills a DAG file's import after this long (Airflow's dag_file_processor_timeout).
# A task's XCom value larger than this (bytes of JSON) is refused: the try fails with a clear error.
MAX_XCOM_SIZE = env_int("MAX_XCOM_SIZE", 1024 * 1024, minimum=1)
# Pages show this many characters of a value (an XCom, a rendered argument); the rest is downloadable.
MAX_DISPLAY_CHARS = env_int("MAX_DISPLAY_CHARS", 20_000, minimum=100)
DAG_FILE_PROCESSOR_TIMEOUT = env_float("DAG_FILE_PROCESSOR_TIMEOUT", 50.0, minimum=1.0)
# A running instance heartbeats every TASK_HEARTBEAT_SEC; with none for TASK_HEARTBEAT_TIMEOUT_SEC
# its worker is taken for dead and the instance is retried or failed.
TASK_HEARTBEAT_SEC = env_float("TASK_HEARTBEAT_SEC", 5.0, minimum=0.1)
TASK_HEARTBEAT_TIMEOUT_SEC = env_float("TASK_HEARTBEAT_TIMEOUT_SEC", 60.0, minimum=1.0)
# Dispatch: up to DISPATCH_BATCH_MAX instances per Celery message once there are more than
# DISPATCH_MIN_MESSAGES to send (each instance still has its own state, log, tries and result).
DISPATCH_BATCH_MAX = env_int("DISPATCH_BATCH_MAX", 1024, minimum=1)
DISPATCH_MIN_MESSAGES = env_int("DISPATCH_MIN_MESSAGES", 32, minimum=1)
# A worker runs a message's instances in groups: one statement claims a group, and one commits
# the group's successes (states, results, log tails) and claims the next group. A group holds
# as many instances as ran in EXECUTION_GROUP_BUDGET_MS so far (so a slow task is claimed alone,
# and a claimed instance never waits long behind its siblings), at most EXECUTION_GROUP_MAX.
EXECUTION_GROUP_MAX = env_int("EXECUTION_GROUP_MAX", 64, minimum=1)
EXECUTION_GROUP_BUDGET_MS = env_float("EXECUTION_GROUP_BUDGET_MS", 50.0, minimum=0.0)
# A worker's group commits do not wait for their WAL flush (PostgreSQL synchronous_commit = off
# on the worker's connection): the flush of a shared disk cost more than a group's statement.
# Durable with the next synchronous commit (any scheduler pass that acts on it) or within about
# 0.6 s; a PostgreSQL crash in between puts those instances back to running (or queued), and
# the heartbeat and lost-message sweeps run them again, as after a lost worker.
WORKER_SYNCHRONOUS_COMMIT = env_bool("WORKER_SYNCHRONOUS_COMMIT", False)
# The same for the scheduler's passes when off: a pass's commit (the instances it queued) would no
# longer wait for the WAL flush before their Celery messages go out. On by default: an interleaved
# A/B of the latency benchmark under load was inconclusive (64 vs 91 ms, then 98 vs 92 ms median).
SCHEDULER_SYNCHRONOUS_COMMIT = env_bool("SCHEDULER_SYNCHRONOUS_COMMIT", True)
# Queued but never started (its message was lost): handed back to be queued again after this long.
TASK_QUEUED_TIMEOUT_SEC = env_float("TASK_QUEUED_TIMEOUT_SEC", 600.0, minimum=1.0)
# Triggerers (runs/triggering/): each heartbeats every TRIGGERER_HEARTBEAT_SEC; one silent for
# TRIGGERER_HEARTBEAT_TIMEOUT_SEC is taken for dead and its triggers are adopted by another.
TRIGGERER_HEARTBEAT_SEC = env_float("TRIGGERER_HEARTBEAT_SEC", 1.0, minimum=0.05)
TRIGGERER_HEARTBEAT_TIMEOUT_SEC = env_float("TRIGGERER_HEARTBEAT_TIMEOUT_SEC", 30.0, minimum=0.5)
TRIGGERER_CAPACITY = env_int("TRIGGERER_CAPACITY", 1000, minimum=1)

# Celery, read by config/celery.py (namespace CELERY).
if broker_url := env_optional("CELERY_BROKER_URL"):
    CELERY_BROKER_URL = broker_url
else:
    # Tests get their own Redis database so they never consume the dev queues. pytest sets
    # PYTEST_VERSION before it imports anything, and pytest-django imports these settings
    # before any conftest.py could set CELERY_BROKER_DB.
    _broker_db = env_int("CELERY_BROKER_DB", 15 if "PYTEST_VERSION" in os.environ else 0, minimum=0, maximum=15)
    CELERY_BROKER_URL = f"redis+socket://{embedded.ensure_redis(VAR_DIR)}?virtual_host={_broker_db}"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis hands an unacknowledged message out again after this long. Short, so that the messages
# a killed worker had taken (a batch's instances still queued behind the one it ran) run again
# within a minute instead of waiting for the queued timeout. A message handed out again while its
# first worker still works on it costs a claim that is refused (or, for a batch, a second worker
# taking the instances still queued): never a second run of a try.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_float("CELERY_VISIBILITY_TIMEOUT_SEC", 60.0, minimum=1.0)}
# State lives in PostgreSQL; nobody waits on a Celery result.
CELERY_TASK_IGNORE_RESULT = True
# A task whose worker dies is redelivered rather than lost; tasks are written to be rerun.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Messages a worker process reserves beyond the one it runs: 1, so that a batch of slow tasks never
# waits behind another while a different worker idles.
CELERY_WORKER_PREFETCH_MULTIPLIER = env_int("CELERY_WORKER_PREFETCH_MULTIPLIER", 1, minimum=1)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE

# The REST API v2 (runs/web/api_v2/). Tokens from POST /auth/token are JWTs signed (HS256) with
# API_JWT_SECRET (default: derived from SECRET_KEY) and expire after API_JWT_EXPIRATION_SEC.
API_JWT_SECRET = env_optional("API_JWT_SECRET") or f"api-jwt:{SECRET_KEY}"
API_JWT_EXPIRATION_SEC = env_int("API_JWT_EXPIRATION_SEC", 86400, minimum=1)
# A page of a list endpoint holds at most this many entries (Airflow's maximum_page_limit).
API_MAXIMUM_PAGE_LIMIT = env_int("API_MAXIMUM_PAGE_LIMIT", 100, minimum=1)
# /metrics answers requests from this host (loopback addresses) when METRICS_ALLOW_LOCAL is on,
# and from anywhere with "Authorization: Bearer <METRICS_TOKEN>" when a token is set.
METRICS_ALLOW_LOCAL = env_bool("METRICS_ALLOW_LOCAL", True)
METRICS_TOKEN = env_optional("METRICS_TOKEN")
