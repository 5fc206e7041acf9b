"""Loading a DAGs folder: every bad file becomes one import error and never hides the good ones."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from dagsapp.loader import list_dag_files, load_dag_file, load_dags_folder

REPO_ROOT = Path(__file__).resolve().parents[2]

GOOD = """
from dagsapp.sdk import DAG, EmptyOperator, dag, task

with DAG("good_with") as good_with:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")

@task
def add(x):
    return x + 1

@dag
def good_decorated():
    add.expand(x=[1, 2, 3])

good_decorated()
"""

SYNTAX_ERROR = """
from dagsapp.sdk import DAG
def broken(:
    pass
"""

RAISES = """
from dagsapp.sdk import DAG
with DAG("never_registered"):
    raise RuntimeError("boom while importing")
"""

CYCLE = """
from dagsapp.sdk import DAG, EmptyOperator
with DAG("cyclic"):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b >> a
"""

SAME_ID = """
from dagsapp.sdk import DAG, EmptyOperator
with DAG("shared_id"):
    EmptyOperator(task_id="{task_id}")
"""


@pytest.fixture(autouse=True)
def _restore_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # The loader puts each DAG folder on sys.path, as Airflow does; keep that out of other tests.
    monkeypatch.setattr(sys, "path", list(sys.path))


def _write(folder: Path, name: str, source: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def _dags_folder(tmp_path: Path) -> Path:
    _write(tmp_path, "good.py", GOOD)
    _write(tmp_path, "syntax_error.py", SYNTAX_ERROR)
    _write(tmp_path, "raises.py", RAISES)
    _write(tmp_path, "cycle.py", CYCLE)
    _write(tmp_path, "same_id_a.py", SAME_ID.format(task_id="first"))
    _write(tmp_path, "same_id_b.py", SAME_ID.format(task_id="second"))
    return tmp_path


def _key(folder: Path, name: str) -> str:
    return str((folder / name).resolve())


class LoadDagsFolderTests:
    def test_it_returns_the_good_dags(self, tmp_path: Path) -> None:
        bag = load_dags_folder(_dags_folder(tmp_path))
        assert sorted(bag.dags) == ["good_decorated", "good_with", "shared_id"]
        assert bag.dags["good_with"].get_task("b").upstream_task_ids == {"a"}
        assert bag.dags["good_decorated"].task_ids == ["add"]
        assert bag.file_dag_ids[_key(tmp_path, "good.py")] == ["good_with", "good_decorated"]
        assert bag.dags["good_with"].fileloc == _key(tmp_path, "good.py")

    def test_it_reports_one_import_error_per_bad_file(self, tmp_path: Path) -> None:
        bag = load_dags_folder(_dags_folder(tmp_path))
        assert sorted(bag.import_errors) == sorted(
            _key(tmp_path, name) for name in ("syntax_error.py", "raises.py", "cycle.py", "same_id_b.py")
        )
        assert "SyntaxError" in bag.import_errors[_key(tmp_path, "syntax_error.py")]
        assert "RuntimeError: boom while importing" in bag.import_errors[_key(tmp_path, "raises.py")]
        assert "DagCycleError" in bag.import_errors[_key(tmp_path, "cycle.py")]
        assert "a >> b >> a" in bag.import_errors[_key(tmp_path, "cycle.py")]
        duplicate = bag.import_errors[_key(tmp_path, "same_id_b.py")]
        assert "'shared_id' is already defined in" in duplicate
        assert "same_id_a.py" in duplicate

    def test_it_keeps_the_first_definition_of_a_shared_dag_id(self, tmp_path: Path) -> None:
        bag = load_dags_folder(_dags_folder(tmp_path))
        assert bag.dags["shared_id"].task_ids == ["first"]

    def test_it_loads_the_same_good_dags_with_or_without_bad_files(self, tmp_path: Path) -> None:
        alone = load_dags_folder(_write(tmp_path / "alone", "good.py", GOOD).parent)
        crowded = load_dags_folder(_dags_folder(tmp_path / "crowded"))
        assert alone.import_errors == {}
        for dag_id in ("good_with", "good_decorated"):
            assert crowded.dags[dag_id].task_ids == alone.dags[dag_id].task_ids

    def test_it_leaves_no_dag_context_behind_after_a_failing_file(self, tmp_path: Path) -> None:
        from dagsapp.dag import DagContext

        load_dags_folder(_dags_folder(tmp_path))
        assert DagContext.current() is None
        assert DagContext.collected is None

    def test_it_is_empty_for_a_missing_folder(self, tmp_path: Path) -> None:
        bag = load_dags_folder(tmp_path / "missing")
        assert bag.dags == {} and bag.import_errors == {}


class ListDagFilesTests:
    def test_it_skips_hidden_and_underscore_paths(self, tmp_path: Path) -> None:
        for name in ("a.py", "sub/b.py", "_helpers.py", ".hidden/c.py", "_private/d.py", "notes.txt"):
            _write(tmp_path, name, "")
        assert [p.relative_to(tmp_path).as_posix() for p in list_dag_files(tmp_path)] == ["a.py", "sub/b.py"]


class LoadDagFileTests:
    def test_it_rejects_one_file_defining_a_dag_id_twice(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "twice.py", """
            from dagsapp.sdk import DAG
            first = DAG("same")
            second = DAG("same")
        """)
        with pytest.raises(ValueError, match="DAG id 'same' is defined twice in twice.py"):
            load_dag_file(path)


class LoaderCommandTests:
    """``python -m dagsapp.loader FILE OUT``: what the DAG processor runs in a child per file."""

    def _run(self, path: Path, out: Path) -> dict[str, Any]:
        subprocess.run([sys.executable, "-m", "dagsapp.loader", str(path), str(out)],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True)
        result: dict[str, Any] = json.loads(out.read_text())
        return result

    def test_it_writes_a_files_dags_as_json(self, tmp_path: Path) -> None:
        folder = _dags_folder(tmp_path / "dags")
        result = self._run(folder / "good.py", tmp_path / "out.json")
        assert sorted(result["dags"]) == ["good_decorated", "good_with"]
        assert result["dags"]["good_decorated"]["tasks"]["add"]["mapping"]["kind"] == "expand"
        assert result["files"][_key(folder, "good.py")] == ["good_with", "good_decorated"]
        assert result["import_errors"] == {}

    def test_it_writes_a_files_import_error(self, tmp_path: Path) -> None:
        folder = _dags_folder(tmp_path / "dags")
        result = self._run(folder / "raises.py", tmp_path / "out.json")
        assert result["dags"] == {}
        assert "boom while importing" in result["import_errors"][_key(folder, "raises.py")]

    def test_it_keeps_its_answer_apart_from_what_the_file_writes_to_stdout(self, tmp_path: Path) -> None:
        path = _write(tmp_path, "noisy.py", """
            import os, sys
            from dagsapp.sdk import DAG, EmptyOperator
            print("{ hello")
            os.write(1, b"not json either")
            with DAG("noisy") as noisy:
                EmptyOperator(task_id="a")
        """)
        assert sorted(self._run(path, tmp_path / "out.json")["dags"]) == ["noisy"]
