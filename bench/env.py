"""Where the benchmarks run: their own database and Redis database, chosen before Django starts.

Benchmarks insert millions of rows; they never touch the dev database (``dagsapp``) or the
test broker. By default they use database ``dagsapp_bench`` on the checkout's embedded
PostgreSQL and Redis database 14 on the embedded Redis; ``BENCH_DATABASE_URL`` and
``BENCH_BROKER_URL`` point them elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "bench"
DAGS_FOLDER = BENCH_DIR / "dags"
RESULTS_DIR = BENCH_DIR / "results"
DATABASE_NAME = "dagsapp_bench"
# --quick (the suite's own test) has a database of its own: the full suite keeps 12.5 million
# seeded instances in dagsapp_bench, whose other runs take minutes to delete, not a truncate.
QUICK_DATABASE_NAME = "dagsapp_bench_quick"
BROKER_DB = 14
# Raised for every process a benchmark starts: the sizes go to 1,000,000 instances of one
# mapped task (benchmark 2). The product's default (settings.MAX_MAP_LENGTH) stays lower.
MAX_MAP_LENGTH = 1_000_000


def var_dir() -> Path:
    raw = os.environ.get("VAR_DIR")
    return Path(raw).expanduser().resolve() if raw else BASE_DIR / "var"


def _create_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    admin = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_url(*, quick: bool = False) -> str:
    if url := os.environ.get("BENCH_DATABASE_URL"):
        return url
    name = QUICK_DATABASE_NAME if quick else DATABASE_NAME
    if url := os.environ.get("DATABASE_URL"):
        # A server of the user's own: the same server, the benchmark's database.
        return urlunsplit(urlsplit(url)._replace(path="/" + name))
    from config import embedded

    server = embedded.ensure_postgres(var_dir(), database="dagsapp")
    return f"postgres://{quote(server.user)}@/{name}?host={quote(str(server.socket_dir))}&port={server.port}"


def broker_url() -> str:
    if url := os.environ.get("BENCH_BROKER_URL"):
        return url
    from config import embedded

    return f"redis+socket://{embedded.ensure_redis(var_dir())}?virtual_host={BROKER_DB}"


def configure(*, quick: bool = False) -> dict[str, str]:
    """Set this process's environment for the benchmarks and return what child processes need."""
    db_url = database_url(quick=quick)
    _create_database(db_url)
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker_url(),
        "DAGS_FOLDER": str(DAGS_FOLDER),
        "MAX_MAP_LENGTH": str(MAX_MAP_LENGTH),
        # Timings without DEBUG's per-query bookkeeping, as a deployment would run.
        "DJANGO_DEBUG": "0",
        "DJANGO_LOG_LEVEL": os.environ.get("DJANGO_LOG_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    }
    os.environ.update(env)
    return env


def redis_client(url: str):  # type: ignore[no-untyped-def]
    """A redis-py client for a broker URL (redis://host:port/db or redis+socket:///path?virtual_host=db)."""
    import redis

    parts = urlsplit(url)
    if parts.scheme == "redis+socket":
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        return redis.Redis(unix_socket_path=parts.path, db=int(query.get("virtual_host", 0)))
    return redis.Redis.from_url(url)
