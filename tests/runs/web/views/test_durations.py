"""The duration chart: one bar per instance in start order, stragglers marked, in one query."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from runs.models import DagRun, TaskInstance
from runs.scheduling.steps import expand_mapped_task
from runs.web.views import durations
from tests.runs.factories import data, make_run

pytestmark = pytest.mark.django_db

DAG_SOURCE = """
@dag(dag_id="durations_dag", start_date=datetime(2024, 1, 1), schedule=None)
def durations_dag():
    @task
    def add(x):
        return x

    @task
    def total(values):
        return sum(values)

    total(add.expand(x=[1, 2, 3, 4, 5]))

durations_dag()
"""


@pytest.fixture
def run(tmp_path: Path) -> DagRun:
    run = make_run(tmp_path, DAG_SOURCE, dag_id="durations_dag")
    assert expand_mapped_task(dag_run=run, data=data(run), task_id="add") == 5
    return run


@pytest.fixture
def viewer(client: Client, django_user_model: Any) -> Client:
    client.force_login(django_user_model.objects.create_user("viewer", password="pw"))
    return client


# One origin for every instance of a test, so the bars' positions are exact.
T0 = timezone.now() - timedelta(hours=1)


def timed(run: DagRun, map_index: int, *, start: float | None, seconds: float | None, state: str = "success") -> None:
    begin = T0 + timedelta(seconds=start) if start is not None else None
    end = begin + timedelta(seconds=seconds) if begin is not None and seconds is not None else None
    TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=map_index).update(
        state=state, start_date=begin, end_date=end, duration=seconds if end else None)


def url(run: DagRun, task_id: str = "add") -> str:
    return reverse("runs:task_durations", args=[run.dag_id, run.run_id, task_id])


def bar_order(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<li class="bar-row[^"]*" id="bar-(-?\d+)"', html)]


class TaskDurationsTests:
    def test_it_requires_login(self, client: Client, run: DagRun) -> None:
        response = client.get(url(run))
        assert response.status_code == 302 and response["Location"].startswith("/login/")

    def test_it_draws_bars_in_start_order(self, viewer: Client, run: DagRun) -> None:
        timed(run, 0, start=20, seconds=5)
        timed(run, 1, start=0, seconds=4)
        timed(run, 2, start=10, seconds=6)
        timed(run, 3, start=5, seconds=60)  # the straggler: far beyond the others' spread
        response = viewer.get(url(run))
        html = response.content.decode()
        assert response.status_code == 200
        assert bar_order(html) == [1, 3, 2, 0]
        assert "4 of 5 instances started" in html
        assert '<span id="durations-not-started">1 not started</span>' in html
        assert re.search(r'class="bar-row straggler" id="bar-3"', html)
        assert len(re.findall(r"bar-row straggler", html)) == 1
        # The first start is the origin; the axis ends with the last end (5 + 60 = 65s).
        assert 'id="bar-1"' in html and re.search(r'id="bar-1".*?style="left: 0\.000%; width: 6\.154%"', html, re.S)
        assert reverse("runs:grid", args=[run.dag_id]) in html

    def test_it_extends_running_instances_to_now(self, viewer: Client, run: DagRun) -> None:
        timed(run, 0, start=0, seconds=5)
        timed(run, 1, start=1, seconds=None, state="running")
        html = viewer.get(url(run)).content.decode()
        assert bar_order(html) == [0, 1]
        assert re.search(r'id="bar-1".*?class="bar state-running running" style="left: 0\.0\d+%; width: 99\.\d+%"', html, re.S)

    def test_it_says_when_nothing_has_started(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(url(run)).content.decode()
        assert "No instance has started yet." in html
        assert "0 of 5 instances started" in html

    def test_it_leaves_removed_instances_out(self, viewer: Client, run: DagRun) -> None:
        timed(run, 0, start=0, seconds=1)
        timed(run, 4, start=1, seconds=1, state="removed")
        html = viewer.get(url(run)).content.decode()
        assert bar_order(html) == [0]
        assert "1 of 4 instances started" in html

    def test_it_caps_the_bars(self, viewer: Client, run: DagRun, monkeypatch: pytest.MonkeyPatch) -> None:
        for i in range(5):
            timed(run, i, start=i, seconds=1)
        monkeypatch.setattr(durations, "MAX_BARS", 2)
        html = viewer.get(url(run)).content.decode()
        assert bar_order(html) == [0, 1]
        assert "Showing the first 2 started instances by start time; 5 have started." in html

    def test_it_renders_the_chart_alone_for_htmx(self, viewer: Client, run: DagRun) -> None:
        timed(run, 0, start=0, seconds=1)
        html = viewer.get(url(run), HTTP_HX_REQUEST="true").content.decode()
        assert 'id="durations-chart"' in html and "<html" not in html and "<h2>" not in html

    def test_it_charts_an_unmapped_task(self, viewer: Client, run: DagRun) -> None:
        now = timezone.now()
        TaskInstance.objects.filter(dag_run=run, task_id="total").update(state="success", start_date=now, end_date=now, duration=0)
        html = viewer.get(url(run, "total")).content.decode()
        assert bar_order(html) == [-1]

    def test_it_404s_on_an_unknown_task(self, viewer: Client, run: DagRun) -> None:
        assert viewer.get(url(run, "nope")).status_code == 404

    def test_it_reads_the_instances_in_one_query(self, viewer: Client, run: DagRun) -> None:
        TaskInstance.objects.bulk_create(TaskInstance(dag_run=run, task_id="add", map_index=i) for i in range(5, 300))
        with CaptureQueriesContext(connection) as ctx:
            viewer.get(url(run))
        assert len([q for q in ctx.captured_queries if "runs_taskinstance" in q["sql"]]) == 1
