"""The DAG list, the Grid and triggering a run."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.models import DagImportError, DagRun, TaskInstance


def _tag(body: str, marker: str) -> str:
    """The whole start tag holding ``marker``."""
    i = body.index(marker)
    return body[body.rindex("<", 0, i) : body.index(">", i) + 1]


class DagListTests:
    def test_it_lists_dags_with_their_last_runs(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.get("/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "view_add" in body
        assert 'class="sq state-running"' in body
        assert "<html" in body

    def test_it_returns_the_fragment_to_htmx(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get("/", HTTP_HX_REQUEST="true").content.decode()
        assert 'id="dag-table"' in body
        assert "<html" not in body

    def test_it_shows_import_errors_escaped(self, operator_client: Client, parsed_dag: str) -> None:
        DagImportError.objects.create(filename="/dags/bad.py", stacktrace="SyntaxError: <script>alert(1)</script>")
        body = operator_client.get("/").content.decode()
        assert "<details" in body and "/dags/bad.py" in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<script>alert(1)" not in body

    def test_it_gets_last_runs_in_one_query(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        for _ in range(3):
            make_run()
        with CaptureQueriesContext(connection) as ctx:
            operator_client.get("/")
        # The last runs of every DAG, and the new-run watch's token (issue 12, point 7).
        assert sum("runs_dagrun" in q["sql"] and "max(id)" not in q["sql"] for q in ctx.captured_queries) == 1


class GridTests:
    def test_it_shows_the_mapped_row_with_its_count(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.get("/dags/view_add/grid/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "add [3]" in body
        assert "<html" in body

    def test_it_shows_an_empty_bracket_before_expansion(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        make_run()
        assert "add [ ]" in operator_client.get("/dags/view_add/grid/").content.decode()

    def test_it_aggregates_the_cell_with_the_group_rule(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="failed")
        body = operator_client.get("/dags/view_add/grid/").content.decode()
        cell = _tag(body, f'id="cell-{run.pk}-add"')
        assert "state-failed" in cell
        # Most frequent first, ties in priority order.
        assert "1 failed, 1 running, 1 success" in cell

    def test_it_shows_success_only_when_all_succeeded_ignoring_removed(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=2).update(state="removed")
        body = operator_client.get("/dags/view_add/grid/").content.decode()
        assert "state-success" in _tag(body, f'id="cell-{run.pk}-add"')
        assert "add [2]" in body

    def test_it_returns_the_grid_body_to_htmx_and_keeps_polling_while_active(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.get("/dags/view_add/grid/", HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="grid-body")
        body = response.content.decode()
        assert response.status_code == 200
        assert body.lstrip().startswith('<div id="grid-body"')
        assert "every 2s" in body

    def test_it_stops_polling_when_the_runs_are_finished(self, operator_client: Client, run: DagRun) -> None:
        DagRun.objects.filter(pk=run.pk).update(state="success")
        response = operator_client.get("/dags/view_add/grid/", HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="grid-body")
        assert response.status_code == 286
        assert "every 2s" not in response.content.decode()

    def test_it_opens_the_panel_from_query_params(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id, "task_id": "add"}).content.decode()
        assert 'id="task-panel"' in body
        assert 'id="mapped-instances"' in body
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id, "task_id": "add", "map_index": "1"}).content.decode()
        assert 'id="instance-panel"' in body

    def test_it_links_cells_with_href_and_hx_get(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get("/dags/view_add/grid/").content.decode()
        cell = _tag(body, f'id="cell-{run.pk}-add"')
        href = re.search(r'href="([^"]+)"', cell).group(1)  # type: ignore[union-attr]
        assert href.startswith("/dags/view_add/grid/?run_id=") and "task_id=add" in href
        # A click re-renders the grid around the new selection (the panel comes out of band).
        assert f'hx-get="{href}"' in cell and 'hx-target="#grid-body"' in cell
        assert 'hx-push-url="true"' in cell

    def test_a_click_selects_a_run_and_the_grid_follows_it(self, operator_client: Client, run: DagRun,
                                                           make_run: Callable[..., DagRun], expand_task: Callable[..., None]) -> None:
        newer = make_run()
        expand_task(newer, "add", 5)
        response = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id, "task_id": "add"},
                                       HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER=f"cell-{run.pk}-add", HTTP_HX_TARGET="grid-body")
        body = response.content.decode()
        assert response.status_code == 200
        grid_body = _tag(body, 'id="grid-body"')
        assert f"run_id={quote(run.run_id)}" in html.unescape(grid_body) and "task_id=add" in grid_body
        assert "add [3]" in body and "add [5]" not in body
        assert 'id="run-info"' in body and run.run_id in body[body.index('id="run-info"'):]
        assert "selected" in _tag(body, f'id="cell-{run.pk}-add"')
        # The panel of the clicked cell, out of band.
        details = _tag(body, 'id="details"')
        assert 'hx-swap-oob="true"' in details
        assert 'id="task-panel"' in body[body.index('id="details"'):]

    def test_its_refresh_keeps_the_selected_run_and_sends_no_panel(self, operator_client: Client, run: DagRun,
                                                                   make_run: Callable[..., DagRun], expand_task: Callable[..., None]) -> None:
        newer = make_run()
        expand_task(newer, "add", 5)
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id, "task_id": "add"},
                                   HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="grid-body").content.decode()
        assert "add [3]" in body and 'id="run-info"' in body and run.run_id in body[body.index('id="run-info"'):]
        assert 'id="details"' not in body and 'id="task-panel"' not in body

    def test_it_opens_the_run_from_its_bar(self, operator_client: Client, run: DagRun) -> None:
        """As in Airflow 3, a run's bar opens the run (issue 12, point 5); its cells open its tasks."""
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id, "task_id": "total"}).content.decode()
        bar = html.unescape(_tag(body, f'id="run-{run.pk}"'))
        assert "task_id" not in bar and urlencode({"run_id": run.run_id}) in bar and 'hx-target="#grid-body"' in bar

    def test_it_is_404_for_an_unknown_dag(self, operator_client: Client, db: None) -> None:
        assert operator_client.get("/dags/nope/grid/").status_code == 404

    def test_it_falls_back_on_a_bad_num_runs(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get("/dags/view_add/grid/?num_runs=abc").status_code == 200
        assert operator_client.get("/dags/view_add/grid/?num_runs=-5&map_index=zz&run_id=nope&task_id=nope").status_code == 200

    def test_it_makes_the_same_number_of_queries_for_3_and_300_instances(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
        django_assert_num_queries: Any,
    ) -> None:
        small = make_run()
        expand_task(small, "add", 3, state="success")
        with CaptureQueriesContext(connection) as ctx:
            assert operator_client.get("/dags/view_add/grid/", {"run_id": small.run_id}).status_code == 200
        n = len(ctx.captured_queries)
        big = make_run()
        expand_task(big, "add", 300, state="success")
        with django_assert_num_queries(n):
            response = operator_client.get("/dags/view_add/grid/", {"run_id": big.run_id})
        assert "add [300]" in response.content.decode()


class TriggerTests:
    def test_it_triggers_a_run_with_conf(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post("/dags/view_add/trigger/", {"conf": '{"a": 1}'})
        assert response.status_code == 302
        run = DagRun.objects.get(dag_id="view_add")
        assert run.conf == {"a": 1}
        body = operator_client.get(response["Location"]).content.decode()
        assert "Triggered run" in body

    def test_it_refuses_bad_json_and_creates_nothing(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post("/dags/view_add/trigger/", {"conf": "{not json"})
        assert response.status_code == 400
        assert "conf is not valid JSON" in response.content.decode()
        response = operator_client.post("/dags/view_add/trigger/", {"conf": "[1, 2]"})
        assert response.status_code == 400
        assert "conf must be a JSON object" in response.content.decode()
        assert not DagRun.objects.filter(dag_id="view_add").exists()

    def test_it_redirects_htmx_on_success(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post("/dags/view_add/trigger/", {"conf": ""}, HTTP_HX_REQUEST="true")
        assert response["HX-Redirect"].startswith("/dags/view_add/grid/?run_id=")

    def test_it_escapes_conf_values(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run(conf={"x": "<script>alert(1)</script>"})
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id}).content.decode()
        assert "<script>alert(1)" not in body
        assert "&lt;script&gt;" in body
        bad = operator_client.post("/dags/view_add/trigger/", {"conf": "<script>alert(2)</script>"}).content.decode()
        assert "<script>alert(2)" not in bad
