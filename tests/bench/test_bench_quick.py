"""The benchmark suite itself works: every benchmark once at --quick size, every figure reported.

``python -m bench.run --quick`` runs in a subprocess against its own database (dagsapp_bench_quick on
the embedded server), its own Redis database and its own scheduler and workers, so this test
needs no pytest-django database and leaves the test database alone. About 30-40 s.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from typing import Any

import pytest
from django.conf import settings

TIMEOUT_SEC = 180

# (name, size) of every figure at --quick size, in the order the table prints them.
EXPECTED = [
    *[(name, "N=20") for name in ("throughput: trigger to run success", "throughput: instances/s (ours)",
                                  "throughput: ms per instance (ours)", "throughput: raw Celery group no-op",
                                  "throughput: ours / raw Celery", "throughput: scheduler peak RSS",
                                  "throughput: worker process peak RSS (largest)")],
    ("latency: upstream success -> downstream start", "10 samples"),
    ("latency: p95", "10 samples"),
    ("expansion: placeholder -> N rows", "N=1000"),
    *[(f"grid: {what}{suffix}", f"25x10, {per}/mapped") for what in ("page", "htmx refresh") for per in (10, 100)
      for suffix in ("", " queries")],
    ("table: API page (state, -duration)", "50 of 1000"),
    ("table: panel page (state, -duration)", "50 of 1000"),
    ("graph: cold (first layout)", "50 tasks, 10 mapped"),
    ("graph: warm (cached layout)", "50 tasks, 10 mapped"),
    ("reduce memory: peak growth over empty task", "sum of 1000"),
    ("reduce memory: sum task peak growth", "sum of 1000"),
    ("reduce memory: empty task peak growth", "sum of 1000"),
    ("reduce: sum task duration", "sum of 1000"),
    ("reduce memory: Python heap peak, sum task (tracemalloc)", "sum of 1000"),
    ("reduce memory: Python heap peak, empty task (tracemalloc)", "sum of 1000"),
    ("log read: one instance", "1 of 1000"),
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    output = tmp_path_factory.mktemp("bench") / "quick.json"
    # Not pytest's environment: the benchmark picks its own database and broker.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "PYTEST_CURRENT_TEST", "DATABASE_URL", "CELERY_BROKER_URL")}
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--output", str(output)], cwd=settings.BASE_DIR,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT_SEC)
    assert proc.returncode == 0, f"bench.run --quick failed:\n{proc.stdout}\n{proc.stderr[-5000:]}"
    return proc, json.loads(output.read_text())


class BenchQuickTests:
    def test_it_reports_every_figure_in_the_json(self, quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
        _, result = quick_run
        got = {(f["name"], f["size"]): f for f in result["figures"]}
        assert [key for key in EXPECTED if key not in got] == []
        for key in EXPECTED:
            figure = got[key]
            assert figure["status"] in ("pass", "FAIL", "-"), f"{key}: {figure['status']}"
            for column in ("median", "min", "max"):
                assert isinstance(figure[column], (int, float)) and math.isfinite(figure[column]), f"{key}: {column}"
            assert figure["min"] <= figure["median"] <= figure["max"]
        assert result["meta"]["quick"] is True
        assert result["meta"]["errors"] == {}

    def test_it_prints_one_table_row_per_figure(self, quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
        proc, _ = quick_run
        lines = proc.stdout.splitlines()
        assert lines[0].split() == ["name", "size", "median", "min", "max", "unit", "target", "pass/fail"]
        for name, size in EXPECTED:
            assert any(line.startswith(name) and size in line for line in lines), f"no row for {name} ({size})"

    def test_it_sets_the_targets_of_the_issue(self, quick_run: tuple[subprocess.CompletedProcess[str], dict[str, Any]]) -> None:
        _, result = quick_run
        targets = {f["name"]: f["target"] for f in result["figures"]}
        assert targets["latency: upstream success -> downstream start"] == "< 20"
        assert targets["latency: p95"] == "< 50"
        assert targets["throughput: scheduler peak RSS"] == "< 250"
        assert targets["log read: one instance"] == "< 50"
        assert targets["graph: warm (cached layout)"] == "< 100"
        assert targets["reduce memory: peak growth over empty task"] == "< 100"
        assert targets["grid: page queries"].startswith("==")

