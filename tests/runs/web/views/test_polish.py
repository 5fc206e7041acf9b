"""Issue 13's polish: error pages, the favicon, XCom keys as written, unmapped instances without
mapped-only details, and the grid cells' tooltips."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client, RequestFactory

from runs.models import DagRun, TaskInstance, XCom
from runs.web.views.errors import server_error

INSTANCE = "/dags/view_add/runs/{run_id}/tasks/{task_id}/mapped/{index}/"


class ErrorPageTests:
    def test_it_answers_an_unknown_page_with_a_styled_404_and_a_way_back(self, viewer_client: Client, settings: object) -> None:
        assert not settings.DEBUG  # type: ignore[attr-defined]
        response = viewer_client.get("/no/such/<page>/")
        body = response.content.decode()
        assert response.status_code == 404
        assert 'id="error-page"' in body and "Page not found" in body and 'class="topbar"' in body
        assert 'href="/" class="button primary">All DAGs' in body
        assert "<page>" not in body, "the path is escaped"

    def test_it_offers_a_login_to_an_anonymous_visitor(self, db: None) -> None:
        body = Client().get("/no/such/page/").content.decode()
        assert 'id="error-page"' in body and 'href="/login/" class="button">Log in' in body and 'id="tz-menu"' not in body

    def test_it_answers_a_missing_run_with_the_styled_404(self, viewer_client: Client, parsed_dag: str) -> None:
        body = viewer_client.get("/dags/view_add/runs/nope/gantt/").content.decode()
        assert 'id="error-page"' in body

    def test_it_keeps_json_404s_for_the_api(self, viewer_client: Client) -> None:
        assert viewer_client.get("/api/v2/nothing-here").json()["detail"]

    # No db fixture: any query from the handler would fail this test (pytest-django blocks it).
    def test_it_renders_the_500_page_without_database_or_request_context(self) -> None:
        request = RequestFactory().get("/dags/x/grid/")  # no session, no user: the middleware may not have run
        response = server_error(request)
        body = response.content.decode()
        assert response.status_code == 500
        assert 'id="error-page"' in body and "Something went wrong" in body and 'href="/" class="button primary"' in body
        assert "/static/css/app.css" in body

    def test_it_serves_the_500_page_when_a_view_fails(self, viewer_client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
        def boom(*args: object, **kwargs: object) -> None:
            raise RuntimeError("kaput")
        monkeypatch.setattr("runs.web.views.dags.render", boom)
        viewer_client.raise_request_exception = False
        response = viewer_client.get("/")
        assert response.status_code == 500 and "Something went wrong" in response.content.decode()


class FaviconTests:
    def test_it_links_an_svg_icon_and_answers_favicon_ico(self, viewer_client: Client) -> None:
        assert (Path(settings.BASE_DIR) / "static" / "favicon.svg").read_text().startswith("<svg")
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in viewer_client.get("/").content.decode()
        response = Client().get("/favicon.ico")  # not logged in: browsers ask before any login
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        assert response.content.startswith(b"<svg")


class InstanceDetailsTests:
    def test_it_shows_xcom_keys_as_written(self, viewer_client: Client, run: DagRun) -> None:
        XCom.objects.create(dag_run=run, task_id="add", map_index=0, key="rowCount_Total", value=3)
        body = viewer_client.get(INSTANCE.format(run_id=quote(run.run_id), task_id="add", index=0) + "?tab=xcom").content.decode()
        assert '<h3 class="xcom-key">rowCount_Total</h3>' in body
        css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
        assert re.search(r"h3\.xcom-key \{[^}]*text-transform: none", css)

    def test_it_shows_no_mapping_details_for_an_unmapped_task(self, viewer_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="success")
        body = viewer_client.get(INSTANCE.format(run_id=quote(run.run_id), task_id="total", index=-1)).content.decode()
        assert 'id="ti-details"' in body
        assert "Map index" not in body and "-1</dd>" not in body
        assert "open in new tab" not in body and "Mapped arguments" not in body and 'class="small links"' not in body
        panel = viewer_client.get(f"/dags/view_add/grid/?run_id={quote(run.run_id)}&task_id=total").content.decode()
        assert 'id="instance-panel"' in panel and "Map index" not in panel and "Mapped arguments" not in panel

    def test_it_keeps_them_for_a_mapped_instance(self, viewer_client: Client, run: DagRun) -> None:
        body = viewer_client.get(INSTANCE.format(run_id=quote(run.run_id), task_id="add", index=1)).content.decode()
        assert "<dt>Map index</dt><dd>1</dd>" in body and "Mapped arguments" in body and 'id="open-as-page"' in body


class GridTooltipTests:
    def test_it_puts_the_per_state_counts_in_each_cells_tooltip(self, viewer_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="failed")
        body = viewer_client.get("/dags/view_add/grid/").content.decode()
        cell = body.split(f'id="cell-{run.pk}-add"')[1].split("</a>")[0]
        assert 'aria-label="add · ' in cell and "1 failed, 1 running, 1 success" in cell
        tip = cell.split('<span class="tip" aria-hidden="true">')[1]
        assert '<strong class="tip-task">add</strong>' in tip
        assert re.findall(r'<span class="tip-count state-(\w+)">(\d+) ', tip) == [("failed", "1"), ("running", "1"), ("success", "1")]
        assert "title=" not in cell, "one tooltip, not the browser's as well"
