"""Nested mapping (issue 9): an expand inside a mapped task group over a value that depends on the
group's own item, and mapped groups inside mapped groups. Airflow refuses both (#29339, #55759)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from runs.cli import run_dag_run_inline
from runs.logs import read_log
from runs.models import DagRun, TaskInstance, TaskMap, XCom
from runs.resolver import PathXComSequence
from runs.scheduling.steps import expand_mapped_tasks, schedule_task_instances
from tests.runs.factories import make_run

CRAWL = """
PAGES = {"a": 2, "b": 0, "c": 3, "d": 1}

@task
def sites():
    return list(PAGES)

@task_group
def crawl(site):
    @task
    def pages(site):
        if site == FAILING:
            raise ValueError("the site is down")
        return [f"{site}{i}" for i in range(PAGES[site])]

    @task(map_index_template="{{ task.op_kwargs['page'] }}")
    def fetch(page):
        return page.upper()

    @task(trigger_rule="none_failed")
    def site_total(values):
        return list(values)

    return site_total(fetch.expand(page=pages(site)))

@task(trigger_rule="all_done")
def everything(totals):
    return list(totals)

with DAG("nested") as the_dag:
    everything(crawl.expand(site=sites()))
"""


def _crawl(tmp_path: Path, *, failing: str = "") -> DagRun:
    return make_run(tmp_path, CRAWL.replace("FAILING", repr(failing)), dag_id="nested")


def _by_path(run: DagRun, task_id: str) -> dict[tuple[int, ...], tuple[str, Any, str | None]]:
    values = dict(XCom.objects.filter(dag_run=run, task_id=task_id).values_list("map_index", "value"))
    return {tuple(path or ([mi] if mi >= 0 else [])): (state, values.get(mi), name)
            for mi, path, state, name in TaskInstance.objects.filter(dag_run=run, task_id=task_id)
            .values_list("map_index", "map_path", "state", "rendered_map_index")}


@pytest.mark.django_db
class NestedExpansionTests:
    def test_it_expands_an_inner_task_per_outer_index_over_that_index_s_own_list(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(_crawl(tmp_path))
        assert run.state == "success"
        fetch = _by_path(run, "crawl.fetch")
        # Site b's list is empty: its placeholder is skipped, the other sites' pages ran.
        assert fetch == {
            (0, 0): ("success", "A0", "a0"), (0, 1): ("success", "A1", "a1"),
            (1,): ("skipped", None, None),
            (2, 0): ("success", "C0", "c0"), (2, 1): ("success", "C1", "c1"), (2, 2): ("success", "C2", "c2"),
            (3, 0): ("success", "D0", "d0"),
        }
        # A reduce inside the group receives its own outer index's results only, in path order.
        totals = _by_path(run, "crawl.site_total")
        assert {p: v[1] for p, v in totals.items()} == {(0,): ["A0", "A1"], (1,): [], (2,): ["C0", "C1", "C2"], (3,): ["D0"]}
        assert _by_path(run, "everything")[()][1] == [["A0", "A1"], [], ["C0", "C1", "C2"], ["D0"]]

    def test_it_fails_only_the_outer_index_whose_inner_list_could_not_be_made(self, tmp_path: Path) -> None:
        run = run_dag_run_inline(_crawl(tmp_path, failing="c"))
        fetch = _by_path(run, "crawl.fetch")
        assert fetch[(2,)][0] == "upstream_failed"
        assert {p: s for p, (s, _v, _n) in fetch.items() if p[0] != 2} == {(0, 0): "success", (0, 1): "success", (1,): "skipped",
                                                                             (3, 0): "success"}
        assert {p: s for p, (s, _v, _n) in _by_path(run, "crawl.site_total").items()} == {
            (0,): "success", (1,): "success", (2,): "upstream_failed", (3,): "success"}
        # The leaf (all_done) gets the totals there are, and decides the run's state, as in Airflow.
        assert _by_path(run, "everything")[()][1] == [["A0", "A1"], [], ["D0"]]
        assert run.state == "success"

    def test_it_starts_an_outer_index_as_soon_as_its_own_list_is_there(self, tmp_path: Path) -> None:
        run = _crawl(tmp_path)
        data = run.serialized_dag.data
        TaskMap.objects.create(dag_run=run, task_id="sites", map_index=-1, length=4)
        XCom.objects.create(dag_run=run, task_id="sites", map_index=-1, value=["a", "b", "c", "d"])
        TaskInstance.objects.filter(dag_run=run, task_id="sites").update(state="success")
        expand_mapped_tasks(dag_run=run, data=data)
        # Only site 0's pages are known; site 1's still runs.
        TaskInstance.objects.filter(dag_run=run, task_id="crawl.pages", map_index=0).update(state="success")
        TaskInstance.objects.filter(dag_run=run, task_id="crawl.pages", map_index=1).update(state="running")
        TaskMap.objects.create(dag_run=run, task_id="crawl.pages", map_index=0, length=2)
        XCom.objects.create(dag_run=run, task_id="crawl.pages", map_index=0, value=["a0", "a1"])
        expand_mapped_tasks(dag_run=run, data=data)
        schedule_task_instances(dag_run=run, data=data)
        fetch = {p: s for p, (s, _v, _n) in _by_path(run, "crawl.fetch").items()}
        assert fetch == {(0, 0): "scheduled", (0, 1): "scheduled", (1,): "none", (2,): "none", (3,): "none"}

    def test_it_fails_an_outer_index_whose_inner_input_is_not_a_list_with_the_reason_in_its_log(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def numbers():
    return [1, 2]

@task_group
def per_number(n):
    @task
    def items(n):
        return n if n == 2 else [n, n]

    @task
    def echo(x):
        return x

    echo.expand(x=items(n))

with DAG("bad_inner") as the_dag:
    per_number.expand(n=numbers())
""", dag_id="bad_inner")
        run = run_dag_run_inline(run)
        echo = _by_path(run, "per_number.echo")
        assert {p: s for p, (s, _v, _n) in echo.items()} == {(0, 0): "success", (0, 1): "success", (1,): "upstream_failed"}
        # The producer fails the index: a result that feeds a mapping must be a list or a dict.
        assert {mi: s for mi, s in TaskInstance.objects.filter(dag_run=run, task_id="per_number.items").values_list("map_index", "state")} == {
            0: "success", 1: "failed"}


@pytest.mark.django_db
class MappedGroupInsideMappedGroupTests:
    def test_it_maps_an_inner_group_over_the_outer_group_s_own_argument(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task_group
def region(name, zones):
    @task_group
    def zone(z):
        @task
        def check(z, name):
            return f"{name}:{z}"

        @task
        def confirm(line):
            return line + " ok"

        confirm(check(z, name))

    zone.expand(z=zones)

@task
def report(lines):
    return list(lines)

with DAG("groups_in_groups") as the_dag:
    region.expand_kwargs([{"name": "north", "zones": ["n1", "n2", "n3"]}, {"name": "south", "zones": ["s1"]}])
""", dag_id="groups_in_groups")
        run = run_dag_run_inline(run)
        assert run.state == "success"
        confirm = _by_path(run, "region.zone.confirm")
        assert {p: v for p, (_s, v, _n) in confirm.items()} == {
            (0, 0): "north:n1 ok", (0, 1): "north:n2 ok", (0, 2): "north:n3 ok", (1, 0): "south:s1 ok"}


@pytest.mark.django_db
class PathOrderTests:
    def test_it_reads_the_results_under_a_prefix_in_path_order_whatever_order_they_were_created_in(self, tmp_path: Path) -> None:
        run = _crawl(tmp_path)
        # Created in the order the outer indexes finished (2 before 0), numbered in that order.
        for mi, path in enumerate([[2, 0], [0, 1], [0, 0], [2, 1]]):
            TaskInstance.objects.create(dag_run=run, task_id="crawl.fetch", map_index=mi, map_path=path, state="success")
            XCom.objects.create(dag_run=run, task_id="crawl.fetch", map_index=mi, value="".join(map(str, path)))
        assert list(PathXComSequence(run.pk, "crawl.fetch", [])) == ["00", "01", "20", "21"]
        assert list(PathXComSequence(run.pk, "crawl.fetch", [2])) == ["20", "21"]
        assert PathXComSequence(run.pk, "crawl.fetch", [0])[1] == "01"

    def test_it_fails_only_the_outer_index_whose_group_argument_cannot_be_mapped_with_the_reason_in_its_log(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task_group
def region(zones):
    @task_group
    def zone(z):
        @task
        def check(z):
            return z

        check(z)

    zone.expand(z=zones)

with DAG("bad_argument") as the_dag:
    region.expand(zones=[["n1", "n2"], "s1"])
""", dag_id="bad_argument")
        run = run_dag_run_inline(run)
        check = _by_path(run, "region.zone.check")
        assert {p: s for p, (s, _v, _n) in check.items()} == {(0, 0): "success", (0, 1): "success", (1,): "failed"}
        failed = TaskInstance.objects.get(dag_run=run, task_id="region.zone.check", map_path=[1])
        log = read_log(failed.pk, failed.try_number)[0]
        assert "Cannot expand mapped task 'region.zone.check' at [1]" in log
        assert "the mapped task group argument 'zones' is 'str' at this index" in log
        assert run.state == "failed"


@pytest.mark.django_db
class ThreeLevelsTests:
    def test_it_maps_three_levels_deep_with_each_level_reading_its_own_outer_index(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task_group
def region(name, zones):
    @task_group
    def zone(z):
        @task
        def hosts(z, name):
            return [f"{name}-{z}-h{i}" for i in range(len(z))]

        @task
        def ping(host):
            return host + " up"

        @task
        def zone_report(lines):
            return list(lines)

        zone_report(ping.expand(host=hosts(z, name)))

    zone.expand(z=zones)

@task
def everything(values):
    return list(values)

with DAG("three_levels") as the_dag:
    region.expand_kwargs([{"name": "n", "zones": ["a", "bb"]}, {"name": "s", "zones": ["ccc"]}])
    everything(XComArg_of("region.zone.ping"))
""".replace('XComArg_of("region.zone.ping")', 'the_dag.get_task("region.zone.ping").output'), dag_id="three_levels")
        run = run_dag_run_inline(run)
        assert run.state == "success"
        ping = _by_path(run, "region.zone.ping")
        assert {p: v for p, (_s, v, _n) in ping.items()} == {
            (0, 0, 0): "n-a-h0 up", (0, 1, 0): "n-bb-h0 up", (0, 1, 1): "n-bb-h1 up",
            (1, 0, 0): "s-ccc-h0 up", (1, 0, 1): "s-ccc-h1 up", (1, 0, 2): "s-ccc-h2 up"}
        reports = _by_path(run, "region.zone.zone_report")
        assert {p: v for p, (_s, v, _n) in reports.items()} == {
            (0, 0): ["n-a-h0 up"], (0, 1): ["n-bb-h0 up", "n-bb-h1 up"], (1, 0): ["s-ccc-h0 up", "s-ccc-h1 up", "s-ccc-h2 up"]}
        # Outside every group: all six, flat, in path order.
        assert _by_path(run, "everything")[()][1] == [v for _p, (_s, v, _n) in sorted(ping.items())]


WIDE = """
@task
def sites():
    return list(range(N))

@task_group
def crawl(site):
    @task
    def pages(site):
        return [site * 10 + i for i in range(2)]

    @task
    def fetch(page):
        return page

    return fetch.expand(page=pages(site))

with DAG("wide_nested") as the_dag:
    crawl.expand(site=sites())
"""


@pytest.mark.django_db
class NestedExpansionBatchTests:
    def _inserts(self, tmp_path: Path, n: int) -> tuple[DagRun, int]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        (tmp_path / str(n)).mkdir()
        run = make_run(tmp_path / str(n), WIDE.replace("N", str(n)), dag_id="wide_nested")
        with CaptureQueriesContext(connection) as ctx:
            run = run_dag_run_inline(run)
        inserts = [q for q in ctx.captured_queries if q["sql"].lstrip().startswith("WITH base AS")]
        return run, len(inserts)

    def test_it_expands_every_ready_outer_index_of_a_level_in_one_statement(self, tmp_path: Path) -> None:
        small_run, small = self._inserts(tmp_path, 3)
        big_run, big = self._inserts(tmp_path, 30)
        assert small_run.state == big_run.state == "success"
        fetched = sorted(TaskInstance.objects.filter(dag_run=big_run, task_id="crawl.fetch", map_index__gte=0)
                         .values_list("map_path", flat=True))
        assert fetched == [[i, j] for i in range(30) for j in range(2)]
        assert len({mi for mi in TaskInstance.objects.filter(dag_run=big_run, task_id="crawl.fetch").values_list("map_index", flat=True)}) == 60
        # Ten times the outer indexes, not ten times the insert statements.
        assert big <= small + 2, (small, big)
