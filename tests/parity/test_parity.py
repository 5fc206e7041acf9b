"""Differential parity: each DAG under tests/parity/dags/ (Airflow 3 syntax) run by our ``dags test``
and compared with Apache Airflow 3.3.2's results recorded in tests/parity/fixtures/NAME.json.

Per instance we compare state, try number, rendered name and return value, and the run's state.
A fixture's ``intended`` block, with its ``reason``, replaces Airflow's results where Airflow is
wrong. ``make parity-record`` re-records the fixtures (it needs Airflow; this test does not).

Our side runs the same file with its imports rewritten to ``dagsapp.sdk`` (``IMPORTS``). All files
are parsed once into one folder, then each DAG runs in this process the way ``dags test`` does
(``runs.cli``), before the comparisons.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import override_settings

from runs.cli import dag_run_summary, run_dag_run_inline
from runs.models import DagImportError, DagModel, DagRunType
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run

HERE = Path(__file__).resolve().parent
DAGS = HERE / "dags"
FIXTURES = HERE / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))

# Each Airflow module a parity DAG may import from, and ours. Anything else is an error, so a DAG
# cannot silently run different code on the two sides.
IMPORTS = {
    "airflow.sdk": "dagsapp.sdk",
    "airflow.sdk.exceptions": "dagsapp.sdk",
    "airflow.exceptions": "dagsapp.sdk",
    "airflow.providers.standard.operators.bash": "dagsapp.sdk",
    "airflow.providers.standard.operators.empty": "dagsapp.sdk",
    "airflow.providers.standard.operators.python": "dagsapp.sdk",
}
IMPORT_LINE = re.compile(r"^(?P<indent>[ \t]*)from (?P<module>airflow[\w.]*) import ", re.MULTILINE)

RUN_TIMEOUT_SEC = 60.0
# A run that would never end in ours (listed in HANGING with its xfail): a short timeout, so the xfail is quick.
HANG_TIMEOUT_SEC = 5.0

# Where our engine is wrong today: strict, so a fix turns the test red until the mark goes.
# (Issue 9's four divergences, the early expansion and concat/zip over a dict, which this suite
# found, are fixed; each fix has its own test beside the code.)
KNOWN_DIVERGENCES: dict[str, str] = {}
HANGING: set[str] = set()


def to_ours(source: str, *, name: str) -> str:
    """The DAG file with each ``from airflow... import`` line pointed at ``dagsapp.sdk``."""
    def replace(match: re.Match[str]) -> str:
        module = match["module"]
        if module not in IMPORTS:
            raise AssertionError(f"{name}.py imports {module}, which has no entry in IMPORTS")
        return f"{match['indent']}from {IMPORTS[module]} import "

    rewritten = IMPORT_LINE.sub(replace, source)
    assert not re.search(r"^\s*import airflow", rewritten, re.MULTILINE), f"{name}.py imports airflow directly"
    return rewritten


def as_rows(task_instances: list[dict[str, Any]]) -> list[list[Any]]:
    """Our summary as the fixture's rows, sorted as the recorder sorts them.

    Return values go through JSON, as Airflow's did, so tuples compare as lists.
    """
    rows = [[t["task_id"], t["map_index"], t["state"], t["try_number"], t["rendered_map_index"],
             json.loads(json.dumps(t["return_value"]))] for t in task_instances]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def run_ours(folder: Path, name: str) -> dict[str, Any]:
    """What ``dags test NAME --json`` prints, as the fixture's fields (or the import error)."""
    path = (folder / f"{name}.py").resolve()
    error = DagImportError.objects.filter(filename=str(path)).first()
    if error is not None:
        return {"import_error": error.stacktrace.strip().splitlines()[-1], "state": None, "task_instances": []}
    assert DagModel.objects.filter(dag_id=name, is_active=True).exists(), f"{name} was not parsed"
    run = create_dag_run(dag_id=name, run_type=DagRunType.TEST)
    try:
        run = run_dag_run_inline(run, timeout=HANG_TIMEOUT_SEC if name in HANGING else RUN_TIMEOUT_SEC)
        state = run.state
    except TimeoutError as exc:
        state = f"timeout: {exc}"
    return {"import_error": None, "state": state, "task_instances": as_rows(dag_run_summary(run)["task_instances"])}


@pytest.fixture(scope="module")
def our_runs(request: pytest.FixtureRequest, django_db_setup: None, django_db_blocker: Any,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """Our results of the DAGs this session selected (``-k`` works), each run once before the tests.

    Outside a test transaction on purpose, as in tests/runs/test_cli.py: the log writer thread
    stores chunks through its own connection, which must see committed instance rows. So the
    tables are flushed at the end, as a transactional test would.
    """
    selected = sorted({item.callspec.params["name"] for item in request.session.items
                       if getattr(item, "originalname", None) == "test_it_matches_airflow" and hasattr(item, "callspec")})
    folder = tmp_path_factory.mktemp("parity_dags")
    for name in selected:
        (folder / f"{name}.py").write_text(to_ours((DAGS / f"{name}.py").read_text(), name=name))
    with django_db_blocker.unblock(), override_settings(DAGS_FOLDER=folder):
        try:
            process_dags_folder(folder)
            yield {name: run_ours(folder, name) for name in selected}
        finally:
            # As TransactionTestCase does: sequences go on, since in-process caches key on row ids.
            call_command("flush", interactive=False, verbosity=0, reset_sequences=False)


def expected(fixture: dict[str, Any]) -> dict[str, Any]:
    """Airflow's results, or the ``intended`` ones where the fixture says Airflow is wrong."""
    source = fixture.get("intended", fixture)
    return {"import_error": bool(fixture["import_error"]), "state": source["state"], "task_instances": source["task_instances"]}


def parity_params() -> list[Any]:
    return [pytest.param(name, marks=[pytest.mark.xfail(strict=True, reason=KNOWN_DIVERGENCES[name])]
                         if name in KNOWN_DIVERGENCES else [], id=name) for name in NAMES]


class ParityTests:
    # The mark only makes pytest-django create the test database: the module fixture runs the DAGs.
    @pytest.mark.django_db
    @pytest.mark.parametrize("name", parity_params())
    def test_it_matches_airflow(self, our_runs: dict[str, dict[str, Any]], name: str) -> None:
        fixture = json.loads((FIXTURES / f"{name}.json").read_text())
        ours = our_runs[name]
        # An import error compares by its presence: the messages are each engine's own.
        actual = {**ours, "import_error": bool(ours["import_error"])}
        assert actual == expected(fixture), ours["import_error"] or ""

    def test_it_has_a_fixture_for_every_dag(self) -> None:
        dags = sorted(p.stem for p in DAGS.glob("*.py"))
        assert dags == NAMES
        assert len(NAMES) >= 40

    def test_it_names_the_reason_for_every_intended_result(self) -> None:
        for name in NAMES:
            fixture = json.loads((FIXTURES / f"{name}.json").read_text())
            if "intended" in fixture:
                assert fixture["intended"].get("reason"), name

    def test_it_marks_only_dags_that_exist(self) -> None:
        assert set(KNOWN_DIVERGENCES) <= set(NAMES)
        assert set(HANGING) <= set(KNOWN_DIVERGENCES)

    def test_it_rewrites_every_airflow_import(self) -> None:
        source = "from airflow.sdk import dag, task\n    from airflow.sdk.exceptions import AirflowSkipException\n"
        assert to_ours(source, name="x") == "from dagsapp.sdk import dag, task\n    from dagsapp.sdk import AirflowSkipException\n"
        with pytest.raises(AssertionError, match="airflow.models"):
            to_ours("from airflow.models import Variable\n", name="x")
