"""Browsing across DAGs: the DAG list's search, tag and last-run filters and pages; the runs and
task-instances lists filtered by state, DAG and days, newest first, paged, each row to the Grid."""

from __future__ import annotations

import re
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from runs.web import browse

DAG = '''\
from __future__ import annotations
from datetime import datetime
from dagsapp.sdk import dag, task


@dag(dag_id="{dag_id}", start_date=datetime(2024, 1, 1), schedule=None, tags={tags!r})
def the_dag():
    @task
    def work(x: int) -> int:
        return x

    work.expand(x=[1, 2])


the_dag()
'''


@pytest.fixture
def dags(db: None, tmp_path: Path) -> list[str]:
    ids = {"Sales_Daily": ["sales", "daily"], "sales_hourly": ["sales"], "ops_cleanup": ["ops"], "ops_weird.one-1": ["ops"]}
    for dag_id, tags in ids.items():
        (tmp_path / f"{re.sub(r'[^a-z]', '_', dag_id.lower())}.py").write_text(textwrap.dedent(DAG.format(dag_id=dag_id, tags=tags)))
    process_dags_folder(tmp_path)
    return list(ids)


def _run(dag_id: str, state: str, started: timedelta | None, *, tis: int = 2, ti_state: str | None = None) -> DagRun:
    run = create_dag_run(dag_id=dag_id, logical_date=timezone.now())
    start = timezone.now() - started if started is not None else None
    DagRun.objects.filter(pk=run.pk).update(state=state, start_date=start, end_date=start + timedelta(seconds=90) if start else None)
    TaskInstance.objects.filter(dag_run=run).delete()
    TaskInstance.objects.bulk_create([TaskInstance(dag_run=run, task_id="work", map_index=i, state=ti_state or state, try_number=1,
                                                   start_date=start, end_date=start, duration=1.0) for i in range(tis)])
    run.refresh_from_db()
    return run


def _row_ids(body: str, prefix: str) -> list[int]:
    return [int(n) for n in re.findall(rf'<tr id="{prefix}-(\d+)"', body)]


class DagListTests:
    def test_it_searches_by_id_case_insensitively(self, operator_client: Client, dags: list[str]) -> None:
        body = operator_client.get("/", {"q": "SALES"}).content.decode()
        assert 'id="dag-Sales_Daily"' in body and 'id="dag-sales_hourly"' in body and 'id="dag-ops_cleanup"' not in body
        assert 'value="SALES"' in body and "1–2 of 2 DAGs" in body

    def test_it_filters_by_tag_and_lists_every_tag(self, operator_client: Client, dags: list[str]) -> None:
        body = operator_client.get("/", {"tag": "daily"}).content.decode()
        assert 'id="dag-Sales_Daily"' in body and 'id="dag-sales_hourly"' not in body
        assert [t for t in ("daily", "ops", "sales") if f'<option value="{t}"' in body] == ["daily", "ops", "sales"]
        assert 'href="/?tag=sales"' in body  # a tag in the table filters by it

    def test_it_filters_by_the_last_runs_state(self, operator_client: Client, dags: list[str]) -> None:
        _run("ops_cleanup", "success", timedelta(hours=2))
        _run("ops_cleanup", "failed", timedelta(hours=1))  # the last one
        _run("sales_hourly", "failed", timedelta(hours=3))
        _run("sales_hourly", "success", timedelta(hours=1))
        body = operator_client.get("/", {"state": "failed"}).content.decode()
        assert 'id="dag-ops_cleanup"' in body and 'id="dag-sales_hourly"' not in body
        never = operator_client.get("/", {"state": "none"}).content.decode()
        assert 'id="dag-Sales_Daily"' in never and 'id="dag-ops_cleanup"' not in never

    def test_it_pages_on_the_server_keeping_the_filters(self, operator_client: Client, dags: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(browse, "DAG_PAGE_SIZE", 2)
        first = operator_client.get("/", {"q": "_"}).content.decode()
        assert "1–2 of 4 DAGs" in first and 'href="/?q=_&amp;page=2"' in first
        second = operator_client.get("/", {"q": "_", "page": 2}, HTTP_HX_REQUEST="true").content.decode()
        assert second.lstrip().startswith('<div id="dag-table"') and "3–4 of 4 DAGs" in second
        assert 'hx-get="/?q=_&amp;page=2"' in second  # its own refresh keeps the page and the filter

    def test_it_escapes_the_search_and_shows_none_for_no_match(self, operator_client: Client, dags: list[str]) -> None:
        body = operator_client.get("/", {"q": '"><script>alert(1)</script>'}).content.decode()
        assert "<script>alert(1)" not in body and 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in body
        assert "No DAG matches these filters." in body
        assert 'id="dag-ops_weird.one-1"' in operator_client.get("/", {"q": "WEIRD.O"}).content.decode()


class RunListTests:
    def test_it_lists_runs_of_every_dag_newest_first_linking_to_the_grid(self, operator_client: Client, dags: list[str]) -> None:
        old = _run("ops_cleanup", "success", timedelta(days=3))
        new = _run("Sales_Daily", "failed", timedelta(minutes=5))
        body = operator_client.get("/runs/").content.decode()
        assert _row_ids(body, "run-row") == [new.pk, old.pk]
        assert f'href="/dags/Sales_Daily/grid/?run_id={new.run_id.replace(":", "%3A").replace("+", "%2B")}"' in body
        assert "1m 30s" in body or "90" in body

    def test_it_filters_by_state_dag_and_days_and_failed_today(self, operator_client: Client, dags: list[str]) -> None:
        today = _run("ops_cleanup", "failed", timedelta(minutes=1))
        _run("ops_cleanup", "failed", timedelta(days=3))
        _run("ops_cleanup", "success", timedelta(minutes=2))
        other = _run("Sales_Daily", "failed", timedelta(minutes=3))
        day = timezone.localdate().isoformat()
        body = operator_client.get("/runs/", {"state": "failed", "from": day, "to": day}).content.decode()
        assert _row_ids(body, "run-row") == [today.pk, other.pk]
        assert f'href="/runs/?state=failed&amp;from={day}&amp;to={day}"' in body  # the quick filter
        assert _row_ids(operator_client.get("/runs/", {"state": "failed", "dag_id": "Sales_Daily"}).content.decode(), "run-row") == [other.pk]
        # Bad values are ignored, never a 500.
        assert operator_client.get("/runs/", {"state": "bogus", "from": "2026-13-45", "page": "x"}).status_code == 200

    def test_it_pages_with_a_bounded_count_in_queries_that_do_not_grow(self, operator_client: Client, dags: list[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(browse, "PAGE_SIZE", 3)
        for n in range(4):
            _run("ops_cleanup", "success", timedelta(minutes=n + 1))
        with CaptureQueriesContext(connection) as small:
            first = operator_client.get("/runs/").content.decode()
        assert "1–3 of 4" in first and 'href="/runs/?page=2"' in first
        for n in range(10):
            _run("sales_hourly", "success", timedelta(minutes=n + 10))
        with CaptureQueriesContext(connection) as large:
            operator_client.get("/runs/")
        assert len(small) == len(large)
        monkeypatch.setattr(browse, "MAX_COUNT", 5)
        assert "1–3 of more than 5" in operator_client.get("/runs/").content.decode()


class TaskInstanceListTests:
    def test_it_lists_instances_of_every_dag_newest_first_linking_to_the_grid_at_the_instance(self, operator_client: Client, dags: list[str]) -> None:
        run = _run("ops_cleanup", "failed", timedelta(minutes=1), tis=2)
        body = operator_client.get("/task-instances/", {"state": "failed"}).content.decode()
        tis = list(TaskInstance.objects.filter(dag_run=run).order_by("-id"))
        assert _row_ids(body, "ti-row") == [t.pk for t in tis]
        assert re.search(r'href="/dags/ops_cleanup/grid/\?run_id=[^"&]+&amp;task_id=work&amp;map_index=1"', body)
        assert f'/dags/ops_cleanup/runs/{run.run_id}/tasks/work/mapped/1/?tab=log' in body.replace("%3A", ":").replace("%2B", "+")

    def test_it_lists_started_instances_and_the_waiting_ones_on_request(self, operator_client: Client, dags: list[str]) -> None:
        run = _run("ops_cleanup", "running", timedelta(minutes=1), tis=1, ti_state="success")
        waiting = TaskInstance.objects.create(dag_run=run, task_id="work", map_index=5, state="scheduled")
        assert waiting.pk not in _row_ids(operator_client.get("/task-instances/").content.decode(), "ti-row")
        body = operator_client.get("/task-instances/", {"state": "scheduled", "from": timezone.localdate().isoformat()}).content.decode()
        assert _row_ids(body, "ti-row") == [waiting.pk]

    def test_it_answers_htmx_with_the_results_only(self, operator_client: Client, dags: list[str]) -> None:
        _run("ops_cleanup", "failed", timedelta(minutes=1))
        body = operator_client.get("/task-instances/", {"state": "failed"}, HTTP_HX_REQUEST="true").content.decode()
        assert body.lstrip().startswith('<div id="results"') and "<html" not in body

    def test_its_queries_do_not_grow_with_rows(self, operator_client: Client, dags: list[str]) -> None:
        _run("ops_cleanup", "failed", timedelta(minutes=1), tis=2)
        with CaptureQueriesContext(connection) as small:
            operator_client.get("/task-instances/")
        _run("sales_hourly", "failed", timedelta(minutes=2), tis=40)
        with CaptureQueriesContext(connection) as large:
            body = operator_client.get("/task-instances/").content.decode()
        assert len(small) == len(large) and len(_row_ids(body, "ti-row")) == 42

    def test_both_lists_are_in_the_top_navigation(self, viewer_client: Client, dags: list[str]) -> None:
        body = viewer_client.get("/").content.decode()
        assert '<a href="/runs/" id="nav-runs">Runs</a>' in body and '<a href="/task-instances/" id="nav-task-instances">' in body


class IndexTests:
    """The lists' queries can be served by their indexes (migration 0016_browse_indexes), in their order, without a sort."""

    @pytest.mark.parametrize(("page", "filters", "index"), [
        (browse.runs_page, browse.Filters(), "dag_run_browse_started"),
        (browse.runs_page, browse.Filters(state="failed"), "dag_run_browse_state"),
        (browse.task_instances_page, browse.Filters(), "ti_browse_started"),
        (browse.task_instances_page, browse.Filters(state="failed"), "ti_browse_state"),
    ])
    def test_it_reads_a_page_by_its_index(self, db: None, page: object, filters: browse.Filters, index: str) -> None:
        with connection.cursor() as cur:
            # Tiny tables make any plan cheap: forbid the sort and the scan, and the plan that remains shows
            # the index can hand the rows over in the page's order.
            cur.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_sort = off")
            with CaptureQueriesContext(connection) as queries:
                page(filters, 1)  # type: ignore[operator]
            sql = next(q["sql"] for q in queries.captured_queries if "LIMIT 50" in q["sql"] and "COUNT" not in q["sql"].upper())
            cur.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cur.fetchall())
        assert index in plan and "Sort" not in plan.split(index)[0], plan
