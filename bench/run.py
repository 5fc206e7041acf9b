"""Entry point of the benchmark suite: ``python -m bench.run [--quick] [--only NAME ...]``.

Prints one table (name, size, median, min, max, unit, target, pass/fail) and writes the same
figures to bench/results/latest.json. See docs/benchmarks.md for what each figure means.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import Context, Figure, fmt, missing

# Run order: the two that need the live scheduler + worker first, so they share one start.
BENCHMARKS = {
    "throughput": "bench.b1_throughput",
    "latency": "bench.b3_latency",
    "triggerer": "bench.b9_triggerer",
    "expansion": "bench.b2_expansion",
    "grid": "bench.b4_grid",
    "live_grid": "bench.b11_live_grid",
    "table": "bench.b5_table",
    "graph": "bench.b6_graph",
    "reduce_memory": "bench.b7_reduce_memory",
    "log_read": "bench.b8_log_read",
    "run_views": "bench.b10_run_views",
}
COLUMNS = ("name", "size", "median", "min", "max", "unit", "target", "pass/fail")


def table(figures: list[Figure]) -> str:
    rows = [COLUMNS] + [
        (f.name, f.size, fmt(f.median), fmt(f.min), fmt(f.max), f.unit, f.target, f.status) for f in figures
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the smallest size of each benchmark, one run (for the test)")
    parser.add_argument("--only", action="append", choices=list(BENCHMARKS), metavar="NAME",
                        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}")
    parser.add_argument("--big", action="store_true", help="also the largest sizes (throughput at N = 100,000, about a minute)")
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=None,
                        help="throughput only at these N, comma-separated (for A/B checks)")
    parser.add_argument("--output", type=Path, default=None, help="JSON file (default bench/results/latest.json)")
    args = parser.parse_args(argv)

    from bench import env as bench_env

    child_env = bench_env.configure(quick=args.quick)
    import django

    django.setup()
    from django.core.management import call_command

    from bench import common

    started = time.monotonic()
    load_before = os.getloadavg()
    call_command("migrate", verbosity=0, interactive=False)
    common.reset_runs()
    common.set_live_counts(os.environ.get("BENCH_LIVE_COUNTS", "on") != "off")
    common.sync_bench_dags()
    ctx = Context(quick=args.quick, env=child_env, big=args.big, sizes=args.sizes)

    selected = [name for name in BENCHMARKS if not args.only or name in args.only]
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    try:
        for i, name in enumerate(selected):
            module = importlib.import_module(BENCHMARKS[name])
            t0 = time.monotonic()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            try:
                got = module.run(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' figures
                traceback.print_exc()
                errors[name] = f"{type(exc).__name__}: {exc}"
                got = [missing(n, s, u, f"error: {type(exc).__name__}") for n, s, u in module.expected(ctx)]
            figures.extend(got)
            print(f"[bench] {name} done in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            if getattr(module, "NEEDS_STACK", False) and not any(
                getattr(importlib.import_module(BENCHMARKS[n]), "NEEDS_STACK", False) for n in selected[i + 1 :]
            ):
                common.stop_engine_stack()
    finally:
        common.stop_engine_stack()

    print(table(figures))
    result: dict[str, Any] = {
        "meta": {
            "quick": args.quick, "big": args.big, "only": args.only, "commit": _git_commit(), "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "elapsed_s": round(time.monotonic() - started, 1), "errors": errors,
            # Other work on the machine skews every timing: kept with the figures.
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        },
        "figures": [f.as_json() for f in figures],
    }
    output = args.output or bench_env.RESULTS_DIR / "latest.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwritten to {output} in {result['meta']['elapsed_s']} s", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
