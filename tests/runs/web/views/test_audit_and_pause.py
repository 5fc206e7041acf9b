"""Pausing a DAG from the list and the DAG page; the audit log pages per DAG and per run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.audit import Actor, acting_as
from runs.models import AuditLog, AuditSource, DagModel, DagRun
from runs.services import mark_task_instances, set_dag_paused


class PauseTests:
    def test_it_pauses_and_unpauses_from_the_dag_page_and_goes_back(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "true", "next": f"/dags/{parsed_dag}/graph/"})
        assert response.status_code == 302 and response["Location"] == f"/dags/{parsed_dag}/graph/"
        assert DagModel.objects.get(dag_id=parsed_dag).is_paused
        html = operator_client.get(f"/dags/{parsed_dag}/grid/").content.decode()
        assert 'role="switch" aria-checked="false"' in html and '<span class="switch-label">Paused</span>' in html
        operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "false"})
        assert not DagModel.objects.get(dag_id=parsed_dag).is_paused
        assert list(AuditLog.objects.order_by("id").values_list("event", "dag_id")) == [("pause", parsed_dag), ("unpause", parsed_dag)]

    def test_it_answers_htmx_with_the_switch_alone(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "true"}, HTTP_HX_REQUEST="true")
        html = response.content.decode()
        assert response.status_code == 200 and html.lstrip().startswith("<form class=\"pause-toggle\"") and "<html" not in html
        assert 'name="is_paused" value="false"' in html  # the next click unpauses

    def test_it_sets_the_state_asked_for_never_toggles(self, operator_client: Client, parsed_dag: str) -> None:
        for _ in range(2):  # a double click
            operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "true"})
        assert DagModel.objects.get(dag_id=parsed_dag).is_paused
        assert AuditLog.objects.count() == 1
        assert operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "maybe"}).status_code == 400

    def test_it_refuses_an_offsite_next(self, operator_client: Client, parsed_dag: str) -> None:
        response = operator_client.post(f"/dags/{parsed_dag}/pause/", {"is_paused": "true", "next": "https://evil.example/"})
        assert response["Location"] == f"/dags/{parsed_dag}/grid/"

    def test_it_shows_a_switch_per_dag_on_the_list(self, operator_client: Client, viewer_client: Client, parsed_dag: str) -> None:
        DagModel.objects.filter(dag_id=parsed_dag).update(is_paused=True)
        assert f'aria-label="Paused: {parsed_dag}"' in operator_client.get("/").content.decode()
        listing = viewer_client.get("/").content.decode()
        assert f'<span class="badge" id="paused-{parsed_dag}">paused</span>' in listing and 'role="switch"' not in listing


class AuditPageTests:
    @pytest.fixture
    def entries(self, make_run: Callable[..., DagRun]) -> DagRun:
        with acting_as(Actor("ann", AuditSource.UI, "10.0.0.7")):
            first = make_run(run_id="first")
            mark_task_instances(dag_run=first, task_id="total", map_indexes=[-1], state="success")
        with acting_as(Actor("bob", AuditSource.CLI)):
            make_run(run_id="second")
        return first

    def test_it_lists_a_dags_actions_newest_first(self, viewer_client: Client, entries: DagRun) -> None:
        html = viewer_client.get(f"/dags/{entries.dag_id}/audit/").content.decode()
        rows = html.split('class="audit-row"')[1:]
        assert len(rows) == 3
        assert "bob" in rows[0] and "second" in rows[0] and "CLI" in rows[0]
        assert "mark task instances" in rows[1] and "total" in rows[1] and "10.0.0.7" in rows[1] and "dashboard" in rows[1]
        assert 'class="active" aria-current="page" id="audit-link"' in html

    def test_it_filters_by_run_event_and_user(self, viewer_client: Client, entries: DagRun) -> None:
        url = f"/dags/{entries.dag_id}/audit/"
        assert viewer_client.get(url, {"run_id": "first"}).content.decode().count('class="audit-row"') == 2
        assert viewer_client.get(url, {"event": "mark"}).content.decode().count('class="audit-row"') == 1
        html = viewer_client.get(url, {"owner": "bob"}).content.decode()
        assert html.count('class="audit-row"') == 1 and '<option value="bob" selected>bob</option>' in html
        assert viewer_client.get(url, {"event": "nonsense"}).content.decode().count('class="audit-row"') == 3

    def test_it_links_the_run_panel_to_the_runs_audit_log(self, viewer_client: Client, entries: DagRun) -> None:
        html = viewer_client.get(f"/dags/{entries.dag_id}/runs/first/").content.decode()
        assert f'href="/dags/{entries.dag_id}/audit/?run_id=first" id="run-audit-link"' in html

    def test_it_pages_in_queries_that_do_not_grow(self, viewer_client: Client, entries: DagRun) -> None:
        url = f"/dags/{entries.dag_id}/audit/"
        with CaptureQueriesContext(connection) as few:
            viewer_client.get(url)
        with acting_as(Actor("carl", AuditSource.API)):
            for _ in range(60):
                DagModel.objects.filter(dag_id=entries.dag_id).update(is_paused=False)
                set_dag_paused(dag_id=entries.dag_id, is_paused=True)
        with CaptureQueriesContext(connection) as many:
            html = viewer_client.get(url, {"page": "2"}).content.decode()
        assert len(many.captured_queries) == len(few.captured_queries)
        assert "page 2 of 2 · 63 records" in html and html.count('class="audit-row"') == 13

    def test_it_shows_every_dags_and_variables_on_the_global_page(self, viewer_client: Client, operator_client: Client,
                                                                  entries: DagRun) -> None:
        operator_client.post("/variables/new/", {"key": "region", "value": '"eu"'})
        html = viewer_client.get("/audit/").content.decode()
        assert html.count('class="audit-row"') == 4 and "create Variable" in html and "region" in html
        assert 'id="nav-audit"' in html and 'id="nav-variables"' in html
