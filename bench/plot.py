"""docs/benchmarks.png from bench/results/latest.json: ``python -m bench.plot [JSON] [PNG]``."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.env import BASE_DIR, RESULTS_DIR


def _by(figures: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [f for f in figures if f["name"].startswith(prefix) and f["median"] is not None]


def plot(result: dict[str, Any], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = result["figures"]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    fig.suptitle(f"dagsapp benchmarks ({result['meta']['date']}, commit {result['meta']['commit']}, "
                 f"{result['meta']['cpus']} CPUs){' - quick sizes' if result['meta']['quick'] else ''}")

    ax = axes[0][0]
    # How cost grows with N: rates on the left axis, milliseconds per instance on the right (log N).
    ours = _by(figures, "throughput: instances/s (ours)")
    raw = _by(figures, "throughput: raw Celery")
    per = _by(figures, "throughput: ms per instance (ours)")
    n_of = lambda f: int(f["size"].split("=")[1])  # noqa: E731
    ax.plot([n_of(f) for f in ours], [f["median"] for f in ours], "o-", label="dagsapp instances/s (scheduler + 2 worker processes)")
    ax.plot([n_of(f) for f in raw], [f["median"] for f in raw], "s--", label="raw Celery group of no-op tasks, tasks/s")
    for f in ours:
        ratio = next((r["median"] for r in _by(figures, "throughput: ours / raw") if r["size"] == f["size"]), None)
        if ratio:
            ax.annotate(f"{ratio:.1f}x", (n_of(f), f["median"]), textcoords="offset points", xytext=(0, 6), fontsize=8, ha="center")
    if ours:
        ax.set_xscale("log")
    ax.set_xlabel("N (mapped instances in the run)")
    ax.set_ylabel("instances (tasks) per second")
    ax.set_title("1. End-to-end throughput and cost per instance against N")
    if per:
        right = ax.twinx()
        right.plot([n_of(f) for f in per], [f["median"] for f in per], "^:", color="tab:green", label="dagsapp ms per instance (right)")
        right.set_ylabel("ms per instance (wall time / N)")
        right.set_ylim(bottom=0)
        right.legend(fontsize=8, loc="lower right")
    ax.legend(fontsize=8, loc="upper left")

    ax = axes[0][1]
    exp = _by(figures, "expansion")
    ns = [int(f["size"].split("=")[1]) for f in exp]
    ax.plot(ns, [f["median"] for f in exp], "o-", label="expand_mapped_task (median)")
    # Issue 14's targets, each at its own size.
    ax.plot([100_000, 1_000_000], [1.5, 15.0], "rx", markersize=10, label="targets: 1.5 s at 100,000, 15 s at 1,000,000")
    if exp:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel("instances")
    ax.set_ylabel("seconds")
    ax.set_title("2. Expansion: placeholder to N rows")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    lat = _by(figures, "latency: upstream")
    if lat:
        ax.hist(lat[0]["samples"], bins=30)
        ax.axvline(20, color="red", linestyle="--", label="target median: 20 ms (p95: 50 ms)")
        ax.axvline(lat[0]["median"], color="black", label=f"median {lat[0]['median']:.0f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("ms from upstream success to downstream start")
    ax.set_title("3. Scheduling latency")

    ax = axes[1][1]
    views = [f for f in figures if f["unit"] == "ms" and f["median"] is not None
             and not f["name"].startswith(("latency", "throughput"))]
    names = [f"{f['name']} [{f['size']}]" for f in views]
    colors = ["tab:red" if f["status"] == "FAIL" else "tab:green" if f["status"] == "pass" else "tab:gray" for f in views]
    ax.barh(range(len(views)), [f["median"] for f in views], color=colors,
            xerr=[[f["median"] - f["min"] for f in views], [f["max"] - f["median"] for f in views]])
    for i, f in enumerate(views):
        if f["target_value"] is not None and f["target_op"] in ("<", "<="):
            ax.plot([f["target_value"]] * 2, [i - 0.4, i + 0.4], color="black")
    ax.set_yticks(range(len(views)), names, fontsize=7)
    ax.invert_yaxis()
    if views:
        ax.set_xscale("log")
    ax.set_xlabel("server time, ms (median, min-max; black tick: target; red: missed)")
    ax.set_title("4-6, 8. Pages, API and log read")

    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=90)


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else RESULTS_DIR / "latest.json"
    output = Path(argv[1]) if len(argv) > 1 else BASE_DIR / "docs" / "benchmarks.png"
    plot(json.loads(source.read_text()), output)
    print(f"plot written to {output}")


if __name__ == "__main__":
    main(sys.argv[1:])
