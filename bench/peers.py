"""``make bench-peers``: the same 1,000-instance map in dagsapp, Apache Airflow 2.10.5 and Prefect 3.

Each peer is installed from PyPI into its own virtualenv under var/peers/ (once), then:
  - dagsapp: trigger -> run success through the scheduler and a 2-process Celery worker (median of 3);
  - Airflow: ``airflow dags test bench_peer_map`` on SQLite in a fresh AIRFLOW_HOME (one run);
  - Prefect: the flow run as a script in a fresh PREFECT_HOME, on its local (ephemeral) server.
Prints the times and the ratios, and writes them to bench/results/peers.json.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.env import BASE_DIR, RESULTS_DIR, var_dir

N = 1000
PEERS = {
    # Without Airflow's constraints file (not reachable from here): pip resolves the pins itself.
    "airflow": ["apache-airflow==2.10.5"],
    # FastAPI 0.120+ dropped Body(min_items=...), which Prefect's server still passes (3.8.8 fails
    # at start with "Body() got an unexpected keyword argument 'min_items'"); pip then picks 3.7.x.
    "prefect": ["prefect>=3,<4", "fastapi<0.120"],
}
TIMEOUT_SEC = 900


def peers_dir() -> Path:
    return var_dir() / "peers"


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
                return f"{' '.join(argv[-len(PEERS[name]):])} failed: " + " | ".join(tail)
    stamp.touch()
    return None


def ours() -> dict[str, Any]:
    from bench import env as bench_env

    child_env = bench_env.configure()
    import django

    django.setup()
    from django.core.management import call_command

    from bench import b1_throughput, common

    call_command("migrate", verbosity=0, interactive=False)
    common.reset_runs()
    common.sync_bench_dags()
    try:
        common.engine_stack(child_env)
        b1_throughput.run_once(10, timeout=60)  # untimed warm-up
        walls = [b1_throughput.run_once(N, timeout=300)[0] for _ in range(3)]
    finally:
        common.stop_engine_stack()
    return {"seconds": statistics.median(walls), "samples": walls, "how": "trigger -> run success, stack running, median of 3"}


def _timed(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    elapsed = time.perf_counter() - t0
    log.write_text(proc.stdout + "\n----- stderr -----\n" + proc.stderr)
    return elapsed, proc.returncode, proc.stdout + proc.stderr


def airflow() -> dict[str, Any]:
    venv = peers_dir() / "airflow"
    home = peers_dir() / "airflow_home"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE_URL", "CELERY"))},
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(BASE_DIR / "bench" / "peer_files" / "airflow_dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(N, 1024)),
        "BENCH_PEER_N": str(N), "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
    }
    airflow_bin = str(venv / "bin" / "airflow")
    migrate_s, rc, out = _timed([airflow_bin, "db", "migrate"], env, peers_dir() / "airflow-db-migrate.log")
    if rc != 0:
        return {"error": "airflow db migrate failed: " + out.strip().splitlines()[-1]}
    seconds, rc, out = _timed([airflow_bin, "dags", "test", "bench_peer_map"], env, peers_dir() / "airflow-dags-test.log")
    if rc != 0 or not ("state=success" in out or "successful" in out):
        return {"error": f"airflow dags test exited {rc}: " + out.strip().splitlines()[-1], "seconds": seconds}
    return {"seconds": seconds, "samples": [seconds], "db_migrate_s": migrate_s,
            "how": "`airflow dags test bench_peer_map` on SQLite, fresh AIRFLOW_HOME (db migrated first, untimed), one run"}


def prefect() -> dict[str, Any]:
    venv = peers_dir() / "prefect"
    home = peers_dir() / "prefect_home"
    shutil.rmtree(home, ignore_errors=True)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO", "DATABASE_URL", "CELERY", "PREFECT_API"))},
        "PREFECT_HOME": str(home), "BENCH_PEER_N": str(N), "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    seconds, rc, out = _timed([str(venv / "bin" / "python"), str(BASE_DIR / "bench" / "peer_files" / "prefect_flow.py")], env,
                              peers_dir() / "prefect-flow.log")
    if rc != 0:
        return {"error": f"prefect flow exited {rc}: " + out.strip().splitlines()[-1], "seconds": seconds}
    flow_s = next((float(line.split("=")[1]) for line in out.splitlines() if line.startswith("BENCH_FLOW_SECONDS=")), None)
    return {"seconds": seconds, "samples": [seconds], "flow_only_s": flow_s,
            "how": "the flow script in a fresh PREFECT_HOME, local ephemeral server started by Prefect, one run (process wall time)"}


def main() -> int:
    results: dict[str, Any] = {"n": N}
    for name in PEERS:
        error = install(name)
        if error:
            results[name] = {"error": f"install failed: {error}"}
    results["dagsapp"] = ours()
    for name, fn in (("airflow", airflow), ("prefect", prefect)):
        if "error" not in results.get(name, {}):
            try:
                results[name] = fn()
            except subprocess.TimeoutExpired:
                results[name] = {"error": f"did not finish within {TIMEOUT_SEC} s"}
    mine = results["dagsapp"]["seconds"]
    print(f"{'system':<10} {'seconds':>9}  {'ratio (peer / dagsapp)':>24}  target")
    print(f"{'dagsapp':<10} {mine:>9.2f}  {'1.0':>24}")
    targets = {"airflow": 20, "prefect": 2}
    for name in ("airflow", "prefect"):
        r = results[name]
        if "error" in r:
            print(f"{name:<10} {'n/a':>9}  {'n/a':>24}  >= {targets[name]}x  ({r['error']})")
            continue
        r["ratio"] = r["seconds"] / mine
        r["target_ratio"] = targets[name]
        r["status"] = "pass" if r["ratio"] >= targets[name] else "FAIL"
        print(f"{name:<10} {r['seconds']:>9.2f}  {r['ratio']:>23.1f}x  >= {targets[name]}x  {r['status']}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "peers.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
