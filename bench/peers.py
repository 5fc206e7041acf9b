"""``make bench-peers``: the same no-op map (N = 100 and 1,000) in dagsapp and its peers.

Each peer is installed from PyPI into its own virtualenv under var/peers/ (once), then:
  - dagsapp: trigger -> run success through the scheduler and a 2-process Celery worker, 3 runs
    per size, measured again between the peers (its stack is stopped while a peer runs);
  - Airflow 3.3.2, ``airflow dags test bench_peer_map`` on SQLite in a fresh AIRFLOW_HOME;
  - Airflow 3.3.2 as a deployment: api-server, dag-processor and scheduler (LocalExecutor,
    parallelism 2) on database ``airflow_peer`` of the embedded PostgreSQL, runs triggered with
    ``airflow dags trigger`` (``bench/peer_airflow.py``);
  - Airflow 2.10.5, ``airflow dags test`` on SQLite, as in the first round;
  - Prefect 3: the flow run as a script in a fresh PREFECT_HOME, on its local (ephemeral) server.
Prints seconds, instances/s and the ratios, and writes them to bench/results/peers.json.
Logs of every peer command and process: var/peers/logs/.

``python -m bench.peers --only airflow3_scheduler --sizes 100`` measures part of it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bench.env import BASE_DIR, RESULTS_DIR, var_dir

SIZES = (100, 1000)
OURS_REPEATS = 3
AIRFLOW3 = "3.3.2"
AIRFLOW2 = "2.10.5"
PEERS = {
    # Without Airflow's constraints files (their host is not reachable from here): pip resolves
    # the pins itself. psycopg2 for the deployment's PostgreSQL (asyncpg comes with Airflow 3).
    "airflow3": [f"apache-airflow=={AIRFLOW3}", "psycopg2-binary"],
    "airflow2": [f"apache-airflow=={AIRFLOW2}"],
    # FastAPI 0.120+ dropped Body(min_items=...), which Prefect's server still passes (3.8.8 fails
    # at start with "Body() got an unexpected keyword argument 'min_items'"); pip then picks 3.7.x.
    "prefect": ["prefect>=3,<4", "fastapi<0.120"],
}
# What each system is called in the table, which virtualenv it needs, and the issue's target
# (ours at least this many times faster, at N = 1,000).
SYSTEMS: dict[str, tuple[str, str | None, float | None]] = {
    "dagsapp": ("dagsapp (scheduler + 2-process worker)", None, None),
    "airflow3_dags_test": (f"Airflow {AIRFLOW3} dags test", "airflow3", 100),
    "airflow3_scheduler": (f"Airflow {AIRFLOW3} scheduler, LocalExecutor", "airflow3", 50),
    "airflow2_dags_test": (f"Airflow {AIRFLOW2} dags test", "airflow2", None),
    "prefect": ("Prefect 3", "prefect", 20),
}
TIMEOUT_SEC = 1800
# One run of the Airflow deployment: on this machine under other sessions' load it ran 100
# instances in about 4 minutes.
DEPLOYMENT_RUN_TIMEOUT_SEC = 3000
# Whether the user pointed the benchmarks at a server of their own (read before bench.env sets DATABASE_URL).
_OWN_SERVER = bool(os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL"))
WARMUP_N = 10


def peers_dir() -> Path:
    return var_dir() / "peers"


def logs_dir() -> Path:
    return peers_dir() / "logs"


def install(name: str) -> str | None:
    """The peer's virtualenv, created and installed if needed; an error message if that failed."""
    venv = peers_dir() / name
    stamp = venv / ".installed"
    if stamp.exists():
        return None
    log = peers_dir() / f"{name}-install.log"
    peers_dir().mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        steps = [[sys.executable, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", *PEERS[name]]]
        for argv in steps:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=TIMEOUT_SEC).returncode != 0:
                tail = log.read_text(errors="replace").strip().splitlines()[-5:]
                return f"{' '.join(argv[-len(PEERS[name]):])} failed (see {log}): " + " | ".join(tail)
    stamp.touch()
    return None


def load() -> float:
    return round(os.getloadavg()[0], 2)


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by these processes, their live descendants and
    every child they have reaped: a measure that other sessions' load on the machine inflates
    far less than wall time."""
    import psutil

    total, seen = 0.0, set()
    for pid in pids:
        try:
            procs = [psutil.Process(pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def postmaster_pid() -> int | None:
    """The embedded PostgreSQL's postmaster (its backends and helpers are its children)."""
    try:
        return int((var_dir() / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# ----- ours -----

_child_env: dict[str, str] | None = None


def _setup_django() -> dict[str, str]:
    global _child_env
    if _child_env is None:
        from bench import env as bench_env

        _child_env = bench_env.configure()
        import django

        django.setup()
        from django.core.management import call_command

        from bench import common

        call_command("migrate", verbosity=0, interactive=False)
        common.reset_runs()
        common.sync_bench_dags()
    return _child_env


def ours(sizes: tuple[int, ...], *, slot: str) -> dict[int, list[dict[str, Any]]]:
    """OURS_REPEATS timed runs per size on a freshly started stack (warmed with one small run)."""
    from bench import b1_throughput, common

    child_env = _setup_django()
    out: dict[int, list[dict[str, Any]]] = {}
    try:
        stack = common.engine_stack(child_env)
        b1_throughput.run_once(WARMUP_N, timeout=60)
        # The scheduler, the DAG processor, the worker and its pool, and PostgreSQL.
        pids = [p.pid for p in stack.processes.values()] + [pid for pid in [postmaster_pid()] if pid]
        for n in sizes:
            out[n] = []
            for _ in range(OURS_REPEATS):
                before, cpu0 = load(), tree_cpu_seconds(pids)
                wall, _ = b1_throughput.run_once(n, timeout=60 + n / 10)
                out[n].append({"seconds": wall, "cpu_s": tree_cpu_seconds(pids) - cpu0, "slot": slot, "load_before": before})
    finally:
        common.stop_engine_stack()
    return out


# ----- Airflow dags test and Prefect: one-shot commands -----

def _peer_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE_URL", "CELERY", "AIRFLOW", "PREFECT_API"))}
    return {**env, "PATH": f"{venv / 'bin'}:{env['PATH']}"}


def _timed(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str, float]:
    """Wall seconds, exit code, output, and CPU seconds of the command and the children it waited for."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cpu0 = children_cpu_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    elapsed = time.perf_counter() - t0
    log.write_text(f"$ {' '.join(argv)}\n{proc.stdout}\n----- stderr -----\n{proc.stderr}")
    return elapsed, proc.returncode, proc.stdout + proc.stderr, children_cpu_seconds() - cpu0


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no output)"


def airflow_dags_test(key: str, sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    """``airflow dags test`` of each size in one fresh AIRFLOW_HOME on SQLite (migrated first, untimed)."""
    venv = peers_dir() / key
    home = peers_dir() / f"{key}_home"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **_peer_env(venv), "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(BASE_DIR / "bench" / "peer_files" / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(*sizes, 1024)),
    }
    airflow_bin = str(venv / "bin" / "airflow")
    migrate_s, rc, out, _ = _timed([airflow_bin, "db", "migrate"], env, logs_dir() / f"{key}-dags-test-db-migrate.log")
    if rc != 0:
        error = f"airflow db migrate exited {rc}: {_last_line(out)}"
        return {n: {"error": error} for n in sizes}
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        before = load()
        seconds, rc, out, cpu_s = _timed([airflow_bin, "dags", "test", "bench_peer_map", "--conf", json.dumps({"n": n})], env,
                                  logs_dir() / f"{key}-dags-test-{n}.log")
        state, ti_success = _last_sqlite_run(home / "airflow.db")
        if rc != 0 or state != "success" or ti_success != n + 2:
            results[n] = {"error": f"airflow dags test exited {rc}, run {state}, {ti_success} instances succeeded: {_last_line(out)}"}
            continue
        results[n] = {"seconds": seconds, "cpu_s": cpu_s, "db_migrate_s": migrate_s, "load_before": before, "load_after": load(),
                      "how": "whole `airflow dags test bench_peer_map --conf {n: N}` command, SQLite, one run"}
    return results


def _last_sqlite_run(db: Path) -> tuple[str | None, int]:
    """The state of the newest run in an Airflow SQLite database and how many of its instances succeeded."""
    try:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT run_id, state FROM dag_run ORDER BY id DESC LIMIT 1").fetchone()
            if row is None:
                return None, 0
            (count,) = conn.execute("SELECT count(*) FROM task_instance WHERE run_id = ? AND state = 'success'", [row[0]]).fetchone()
            return str(row[1]), int(count)
    except sqlite3.Error:
        return None, 0


def prefect(sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    venv = peers_dir() / "prefect"
    results: dict[int, dict[str, Any]] = {}
    for n in sizes:
        home = peers_dir() / "prefect_home"
        shutil.rmtree(home, ignore_errors=True)
        env = {**_peer_env(venv), "PREFECT_HOME": str(home), "BENCH_PEER_N": str(n), "PREFECT_LOGGING_LEVEL": "WARNING",
               # The local server starts in a subprocess; 20 s (the default) is too short for a busy 2-CPU machine.
               "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300"}
        before = load()
        seconds, rc, out, cpu_s = _timed([str(venv / "bin" / "python"), str(BASE_DIR / "bench" / "peer_files" / "prefect_flow.py")], env,
                                  logs_dir() / f"prefect-flow-{n}.log")
        if rc != 0:
            results[n] = {"error": f"prefect flow exited {rc}: {_last_line(out)}"}
            continue
        flow_s = next((float(line.split("=")[1]) for line in out.splitlines() if line.startswith("BENCH_FLOW_SECONDS=")), None)
        results[n] = {"seconds": seconds, "cpu_s": cpu_s, "flow_only_s": flow_s, "load_before": before, "load_after": load(),
                      "how": "the flow script in a fresh PREFECT_HOME, Prefect's ephemeral local server, whole process, one run"}
    return results


# ----- Airflow 3 with its scheduler -----

def airflow3_scheduler(sizes: tuple[int, ...]) -> dict[int, dict[str, Any]]:
    from bench.env import database_url
    from bench.peer_airflow import AirflowDeployment, Postgres
    from config import embedded

    if _OWN_SERVER:
        return {n: {"error": "the Airflow deployment runs only on the embedded PostgreSQL"} for n in sizes}
    database_url()  # starts the embedded server if needed
    server = embedded.ensure_postgres(var_dir(), database="dagsapp")
    pg = Postgres(socket_dir=server.socket_dir, port=server.port, user=server.user)
    home = peers_dir() / "airflow3_scheduler_home"
    shutil.rmtree(home, ignore_errors=True)
    deployment = AirflowDeployment(venv=peers_dir() / "airflow3", home=home, log_dir=logs_dir(), pg=pg, n=max(sizes),
                                   cpu_seconds=lambda pids: tree_cpu_seconds([*pids, *[pid for pid in [postmaster_pid()] if pid]]))
    results: dict[int, dict[str, Any]] = {}
    try:
        started = deployment.start()
        deployment.run(WARMUP_N, run_id="bench_warmup", timeout=600)
        for n in sizes:
            before = load()
            try:
                r = deployment.run(n, run_id=f"bench_{n}", timeout=DEPLOYMENT_RUN_TIMEOUT_SEC)
            except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
                results[n] = {"error": str(exc)}
                continue
            results[n] = {**r, **started, "load_before": before, "load_after": load(),
                          "how": "run queued_at -> end_date (Airflow's own timestamps), triggered by `airflow dags trigger`, "
                                 "api-server + dag-processor + scheduler with LocalExecutor, parallelism 2, PostgreSQL"}
    except (RuntimeError, TimeoutError, subprocess.TimeoutExpired) as exc:
        for n in sizes:
            results.setdefault(n, {"error": f"{type(exc).__name__}: {exc}"})
    finally:
        deployment.stop()
    return results


# ----- the whole comparison -----

# The slowest last: a run cut short by its deadline still has the others' figures.
RUNNERS: dict[str, Callable[[tuple[int, ...]], dict[int, dict[str, Any]]]] = {
    "airflow3_dags_test": lambda sizes: airflow_dags_test("airflow3", sizes),
    "airflow2_dags_test": lambda sizes: airflow_dags_test("airflow2", sizes),
    "prefect": prefect,
    "airflow3_scheduler": airflow3_scheduler,
}


def summarize(results: dict[str, Any], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """One row per system and size: seconds, instances/s, CPU seconds, and peer / ours for both
    (ours: the median of every run of ours at that size). The target is judged on wall time."""
    rows = []
    for n in sizes:
        samples = results["dagsapp"].get(str(n), [])
        mine = [s["seconds"] for s in samples]
        mine_median = statistics.median(mine) if mine else None
        mine_cpu = [s["cpu_s"] for s in samples if s.get("cpu_s") is not None]
        mine_cpu_median = statistics.median(mine_cpu) if mine_cpu else None
        rows.append({"system": "dagsapp", "n": n, "seconds": mine_median, "instances_per_s": n / mine_median if mine_median else None,
                     "ratio": 1.0 if mine_median else None, "cpu_s": mine_cpu_median, "cpu_ratio": 1.0 if mine_cpu_median else None,
                     "target": None, "status": "", "runs": len(mine), "spread": [min(mine), max(mine)] if mine else None})
        for key in (k for k in SYSTEMS if k in RUNNERS):
            r = results.get(key, {}).get(str(n))
            if r is None:
                continue
            target = SYSTEMS[key][2] if n == 1000 else None
            row: dict[str, Any] = {"system": key, "n": n, "target": target, "runs": 1}
            if "error" in r:
                rows.append({**row, "seconds": None, "instances_per_s": None, "ratio": None, "cpu_s": None, "cpu_ratio": None,
                             "status": f"n/a ({r['error'][:200]})"})
                continue
            ratio = r["seconds"] / mine_median if mine_median else None
            cpu_s = r.get("cpu_s")
            cpu_ratio = cpu_s / mine_cpu_median if cpu_s is not None and mine_cpu_median else None
            status = "" if target is None or ratio is None else ("pass" if ratio >= target else "FAIL")
            rows.append({**row, "seconds": r["seconds"], "instances_per_s": n / r["seconds"], "ratio": ratio,
                         "cpu_s": cpu_s, "cpu_ratio": cpu_ratio, "status": status})
    return rows


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{suffix}"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'system':<42} {'N':>5} {'seconds':>8} {'inst/s':>7} {'peer/ours':>9} {'CPU s':>7} {'CPU peer/ours':>13}  target",
             "-" * 108]
    for r in rows:
        target = f">= {r['target']:g}x {r['status']}" if r["target"] else r["status"]
        lines.append(f"{SYSTEMS[r['system']][0]:<42} {r['n']:>5} {_num(r['seconds'], '.2f'):>8} {_num(r['instances_per_s'], '.1f'):>7} "
                     f"{_num(r['ratio'], '.1f', 'x'):>9} {_num(r.get('cpu_s'), '.1f'):>7} {_num(r.get('cpu_ratio'), '.1f', 'x'):>13}  {target}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", action="append", choices=list(RUNNERS), help="measure only these peers (repeatable)")
    parser.add_argument("--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=SIZES, help="e.g. 100,1000")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "peers.json")
    args = parser.parse_args(argv)
    sizes: tuple[int, ...] = args.sizes
    chosen = args.only or list(RUNNERS)
    results: dict[str, Any] = {
        "sizes": list(sizes), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
        "python": platform.python_version(), "load_at_start": os.getloadavg(), "dagsapp": {},
    }
    errors: dict[str, str] = {}
    for venv in dict.fromkeys(SYSTEMS[k][1] for k in chosen):
        if venv and (error := install(venv)):
            errors[venv] = f"install failed: {error}"

    def save() -> None:
        results["load_at_end"] = os.getloadavg()
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        results["rows"] = summarize(results, sizes)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")

    def measure_ours(slot: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] dagsapp ({slot}), load {load()}", flush=True)
        for n, samples in ours(sizes, slot=slot).items():
            results["dagsapp"].setdefault(str(n), []).extend(samples)

    # Ours before the first peer and again after each one, so slow and fast hours of the
    # machine fall on both sides; its stack is stopped while a peer runs.
    measure_ours("first")
    save()
    for key in chosen:
        print(f"[{time.strftime('%H:%M:%S')}] {key}, load {load()}", flush=True)
        venv = SYSTEMS[key][1]
        if venv in errors:
            results[key] = {str(n): {"error": errors[venv]} for n in sizes}
        else:
            try:
                results[key] = {str(n): r for n, r in RUNNERS[key](sizes).items()}
            except subprocess.TimeoutExpired as exc:
                results[key] = {str(n): {"error": f"did not finish within {exc.timeout} s"} for n in sizes}
        measure_ours(f"after {key}")
        save()  # after each peer, so an interrupted comparison keeps what it measured
    print(table(results["rows"]))
    print(f"load average at start {results['load_at_start']}, at end {results['load_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
