"""A DAG's code per version, and its docs and its tasks' docs on the DAG page and in the task panel."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from runs.models import TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run

DOCUMENTED = '''\
from __future__ import annotations
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="documented", start_date=datetime(2024, 1, 1), schedule=None, tags=["docs"],
     doc_md="""# Nightly load

Loads **everything**. <script>alert(1)</script><img src=x onerror="alert(2)">
""")
def documented():
    @task
    def extract() -> int:
        """Reads the *source* table. <script>alert(3)</script>"""
        return 1

    @task(doc_md="Adds `10`.")
    def add(x: int, y: int) -> int:
        return x + y

    add.partial(y=10).expand(x=[extract()])


documented()
'''


@pytest.fixture
def documented(db: None, tmp_path: Path) -> Path:
    path = tmp_path / "documented.py"
    path.write_text(textwrap.dedent(DOCUMENTED))
    process_dags_folder(tmp_path)
    return path


class CodeTests:
    def test_it_shows_the_code_of_the_runs_version_and_the_latest(self, operator_client: Client, documented: Path) -> None:
        old = create_dag_run(dag_id="documented", logical_date=timezone.now())
        documented.write_text(documented.read_text().replace("return 1", "return 2  # changed"))
        process_dags_folder(documented.parent)
        latest = operator_client.get("/dags/documented/code/").content.decode()
        assert "changed" in latest and "2 (latest)" in latest and 'class="highlight"' in latest
        # The <script> in the file is shown as code, escaped.
        assert "<script>alert" not in latest and "&lt;script&gt;" in latest
        of_run = operator_client.get("/dags/documented/code/", {"run_id": old.run_id}).content.decode()
        assert "changed" not in of_run and "return" in of_run and 'id="code-run"' in of_run
        assert '<option value="1" selected>' in of_run
        assert "changed" not in operator_client.get("/dags/documented/code/", {"version": 1}).content.decode()

    def test_it_is_linked_from_the_dag_page_and_404_for_an_unknown_dag(self, operator_client: Client, documented: Path) -> None:
        assert 'id="code-link" href="/dags/documented/code/"' in operator_client.get("/dags/documented/grid/").content.decode()
        assert operator_client.get("/dags/nope/code/").status_code == 404

    def test_a_viewer_reads_it_and_a_stranger_is_sent_to_log_in(self, viewer_client: Client, documented: Path) -> None:
        assert viewer_client.get("/dags/documented/code/").status_code == 200
        assert Client().get("/dags/documented/code/").status_code == 302

    def test_it_reads_a_bounded_number_of_queries(self, operator_client: Client, documented: Path,
                                                  django_assert_max_num_queries: object) -> None:
        for n in range(5):
            documented.write_text(documented.read_text() + f"# edit {n}\n")
            process_dags_folder(documented.parent)
        with django_assert_max_num_queries(8):  # type: ignore[operator]
            operator_client.get("/dags/documented/code/")


class DocsTests:
    def test_the_dag_page_shows_the_dag_docs_as_sanitised_markdown(self, operator_client: Client, documented: Path) -> None:
        body = operator_client.get("/dags/documented/grid/").content.decode()
        assert '<details class="docs dag-docs" id="dag-docs" open>' in body
        assert "<h1>Nightly load</h1>" in body and "<strong>everything</strong>" in body
        assert "alert(1)" not in body and "onerror" not in body and '<img src="x">' in body

    def test_the_task_panel_shows_the_tasks_docs_from_doc_md_or_the_docstring(self, operator_client: Client, documented: Path) -> None:
        run = create_dag_run(dag_id="documented", logical_date=timezone.now())
        base = f"/dags/documented/runs/{run.run_id}/tasks"
        extract = operator_client.get(f"{base}/extract/", HTTP_HX_REQUEST="true").content.decode()
        assert 'id="task-docs-extract"' in extract and "Reads the <em>source</em> table." in extract
        assert "alert(3)" not in extract and "<script" not in extract
        TaskInstance.objects.filter(dag_run=run, task_id="add").delete()
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=0)
        mapped = operator_client.get(f"{base}/add/", HTTP_HX_REQUEST="true").content.decode()
        assert "Adds <code>10</code>." in mapped
        instance = operator_client.get(f"{base}/add/mapped/0/").content.decode()
        assert "Adds <code>10</code>." in instance
