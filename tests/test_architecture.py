"""The house rules of docs/architecture.md that a reader cannot see break: who may import whom."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import dagsapp

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ("django", "runs", "config", "celery")


def _modules_loaded_by(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter (no Django settings) and list the modules it loaded.

    A fresh process sees imports done at run time too (inside functions reached at import,
    importlib calls), which a static reading of the source would miss.
    """
    script = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout.splitlines()[-1])
    return loaded


def _engine_modules(loaded: list[str]) -> list[str]:
    return [m for m in loaded if m.split(".")[0] in ENGINE]


class AuthoringPackageTests:
    def test_it_imports_no_django_and_no_engine_module(self) -> None:
        names = ["dagsapp"] + [m.name for m in pkgutil.walk_packages(dagsapp.__path__, "dagsapp.")]
        assert "dagsapp.sdk" in names and "dagsapp.serialization" in names
        loaded = _modules_loaded_by(f"import importlib\nfor name in {names!r}:\n    importlib.import_module(name)")
        assert _engine_modules(loaded) == []

    def test_it_parses_and_serializes_the_example_dags_without_django(self) -> None:
        # What DAG files pull in through the SDK must stay on the authoring side too.
        loaded = _modules_loaded_by("from dagsapp.loader import serialize_folder\nr = serialize_folder('dags')\nassert r['dags'] and not r['import_errors'], r['import_errors']")
        assert "dagsapp.serialization" in loaded
        assert _engine_modules(loaded) == []


class ImportContractTests:
    def test_it_keeps_every_import_contract(self) -> None:
        # The contracts live in pyproject.toml; `make lint` runs the same check before the tests.
        lint_imports = Path(sys.executable).with_name("lint-imports")
        out = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
        assert "0 broken" in out.stdout
