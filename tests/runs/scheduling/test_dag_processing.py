"""Parsing a DAGs folder into the database: versions, active flags, import errors."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from runs.models import DagImportError, DagModel, SerializedDag
from runs.scheduling.dag_processing import DagProcessor, process_dags_folder
from runs.services import create_dag_run
from tests.dag_sources import CANARY, HOSTILE_FILES, daily
from tests.runs.factories import write_dag

pytestmark = pytest.mark.django_db(transaction=True)

ONE_TASK = """
with DAG("versioned") as the_dag:
    EmptyOperator(task_id="a")
"""

TWO_TASKS = """
with DAG("versioned") as the_dag:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

BROKEN = """
with DAG("broken") as the_dag:
    EmptyOperator(task_id="a") >> undefined_name
"""


class ImportErrorTests:
    def test_it_stores_an_import_error_and_still_loads_the_good_files(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK, name="good.py")
        broken = write_dag(tmp_path, BROKEN, name="broken.py")

        process_dags_folder(tmp_path)

        error = DagImportError.objects.get()
        assert error.filename == str(broken.resolve())
        assert "NameError" in error.stacktrace
        assert "undefined_name" in error.stacktrace
        assert DagModel.objects.filter(dag_id="versioned", is_active=True).exists()

    def test_it_clears_the_import_error_once_the_file_is_fixed(self, tmp_path: Path) -> None:
        write_dag(tmp_path, BROKEN, name="broken.py")
        process_dags_folder(tmp_path)

        write_dag(tmp_path, BROKEN.replace(" >> undefined_name", ""), name="broken.py")
        process_dags_folder(tmp_path)

        assert not DagImportError.objects.exists()
        assert DagModel.objects.get(dag_id="broken").is_active

    def test_it_keeps_the_last_good_version_of_a_dag_whose_file_broke(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)
        good = DagModel.objects.get(dag_id="versioned").latest_serialized_id

        write_dag(tmp_path, ONE_TASK + "\nraise RuntimeError('half-saved file')\n")
        process_dags_folder(tmp_path)

        dag = DagModel.objects.get(dag_id="versioned")
        assert dag.is_active
        assert dag.latest_serialized_id == good
        assert "half-saved file" in DagImportError.objects.get().stacktrace


class ActiveDagTests:
    def test_it_deactivates_a_dag_whose_file_was_removed(self, tmp_path: Path) -> None:
        gone = write_dag(tmp_path, ONE_TASK, name="gone.py")
        write_dag(tmp_path, BROKEN.replace(" >> undefined_name", "").replace('"broken"', '"stays"'), name="stays.py")
        process_dags_folder(tmp_path)

        gone.unlink()
        process_dags_folder(tmp_path)

        assert not DagModel.objects.get(dag_id="versioned").is_active
        assert DagModel.objects.get(dag_id="stays").is_active

    def test_it_reactivates_a_dag_that_comes_back(self, tmp_path: Path) -> None:
        path = write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)
        path.unlink()
        process_dags_folder(tmp_path)

        write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)

        assert DagModel.objects.get(dag_id="versioned").is_active

    def test_it_leaves_dags_of_other_folders_alone(self, tmp_path: Path) -> None:
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        write_dag(tmp_path / "one", ONE_TASK)
        process_dags_folder(tmp_path / "one")

        process_dags_folder(tmp_path / "two")

        assert DagModel.objects.get(dag_id="versioned").is_active


class VersionTests:
    def test_it_stores_a_new_version_only_when_the_dag_changes(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK)
        assert process_dags_folder(tmp_path) == 1
        assert process_dags_folder(tmp_path) == 0

        write_dag(tmp_path, TWO_TASKS)
        assert process_dags_folder(tmp_path) == 1

        hashes = list(SerializedDag.objects.filter(dag_id="versioned").values_list("dag_hash", flat=True))
        assert len(set(hashes)) == 2

    def test_it_stores_the_source_per_version_and_an_edit_of_the_code_alone_is_a_new_version(self, tmp_path: Path) -> None:
        path = write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)
        old_run = create_dag_run(dag_id="versioned", run_id="old")
        Path(path).write_text(Path(path).read_text() + "# a comment changes no structure\n")
        assert process_dags_folder(tmp_path) == 1
        new_run = create_dag_run(dag_id="versioned", run_id="new")
        old_run.refresh_from_db()
        assert "EmptyOperator(task_id=\"a\")" in old_run.serialized_dag.source_code
        assert "# a comment" not in old_run.serialized_dag.source_code
        assert "# a comment changes no structure" in new_run.serialized_dag.source_code
        assert old_run.serialized_dag.data == new_run.serialized_dag.data

    def test_it_keeps_old_runs_on_the_version_they_started_with(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)
        old_run = create_dag_run(dag_id="versioned", run_id="old")

        write_dag(tmp_path, TWO_TASKS)
        process_dags_folder(tmp_path)
        new_run = create_dag_run(dag_id="versioned", run_id="new")

        old_run.refresh_from_db()
        assert old_run.serialized_dag_id != new_run.serialized_dag_id
        assert list(old_run.serialized_dag.data["tasks"]) == ["a"]
        assert list(new_run.serialized_dag.data["tasks"]) == ["a", "b"]
        assert sorted(old_run.task_instances.values_list("task_id", flat=True)) == ["a"]
        assert sorted(new_run.task_instances.values_list("task_id", flat=True)) == ["a", "b"]

    def test_it_goes_back_to_an_earlier_version_without_a_duplicate(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)
        first = DagModel.objects.get(dag_id="versioned").latest_serialized_id
        write_dag(tmp_path, TWO_TASKS)
        process_dags_folder(tmp_path)

        write_dag(tmp_path, ONE_TASK)
        assert process_dags_folder(tmp_path) == 1

        assert DagModel.objects.get(dag_id="versioned").latest_serialized_id == first
        assert SerializedDag.objects.filter(dag_id="versioned").count() == 2


class ScheduleTests:
    def test_it_starts_a_daily_dag_without_catchup_at_the_latest_complete_interval(self, tmp_path: Path) -> None:
        write_dag(tmp_path, daily(catchup=False))
        process_dags_folder(tmp_path)

        dag = DagModel.objects.get(dag_id="daily")
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        assert dag.schedule == "@daily"
        assert dag.next_dagrun == today - timedelta(days=1)

    def test_it_starts_a_catchup_dag_at_its_start_date(self, tmp_path: Path) -> None:
        write_dag(tmp_path, daily(catchup=True))
        process_dags_folder(tmp_path)

        assert DagModel.objects.get(dag_id="daily").next_dagrun == datetime(2024, 1, 1, tzinfo=UTC)

    def test_it_leaves_an_unscheduled_dag_without_a_next_run(self, tmp_path: Path) -> None:
        write_dag(tmp_path, ONE_TASK)
        process_dags_folder(tmp_path)

        assert DagModel.objects.get(dag_id="versioned").next_dagrun is None


class HostileDagFileTests:
    @pytest.fixture(autouse=True)
    def _short_timeout(self, settings: Any) -> None:
        settings.DAG_FILE_PROCESSOR_TIMEOUT = 3.0

    @pytest.mark.parametrize("kind", list(HOSTILE_FILES))
    def test_it_turns_what_a_file_does_into_its_own_import_error(self, tmp_path: Path, kind: str) -> None:
        source, message = HOSTILE_FILES[kind]
        write_dag(tmp_path, CANARY, name="canary.py")
        hostile = write_dag(tmp_path, source, name=f"{kind}.py")

        process_dags_folder(tmp_path)

        assert DagModel.objects.filter(dag_id="canary", is_active=True).exists()
        errors = {e.filename: e.stacktrace for e in DagImportError.objects.all()}
        if message is None:
            assert errors == {}
            assert DagModel.objects.filter(dag_id="noisy", is_active=True).exists()
        else:
            assert list(errors) == [str(hostile.resolve())]
            assert message in errors[str(hostile.resolve())]
            assert "\x00" not in errors[str(hostile.resolve())]

    def test_it_registers_the_other_files_while_one_hangs(self, tmp_path: Path) -> None:
        write_dag(tmp_path, HOSTILE_FILES["hangs"][0], name="a_hangs.py")
        write_dag(tmp_path, CANARY, name="b_canary.py")
        processor = DagProcessor(dags_folder=str(tmp_path))

        def process() -> None:
            try:
                processor.run_once()
            finally:
                connection.close()  # this thread's own connection

        done = threading.Thread(target=process)
        done.start()
        try:
            deadline = time.monotonic() + 2.5
            while time.monotonic() < deadline and not DagModel.objects.filter(dag_id="canary").exists():
                time.sleep(0.05)
            assert DagModel.objects.filter(dag_id="canary", is_active=True).exists()
        finally:
            done.join()
        assert DagImportError.objects.count() == 1
