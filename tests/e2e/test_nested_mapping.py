"""Nested mapping on the real stack (issue 9): a scheduler and a Celery worker as subprocesses run
``example_nested_mapping``; then one outer index is cleared, and one outer index's inner list is
made again (re-expanding only that index), and nothing else runs again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runs.cli import wait_for_dag_run
from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import clear_outer_index, clear_task_instances, create_dag_run
from tests.conftest import LiveStack
from tests.e2e.test_examples import RUN_TIMEOUT_SEC

pytestmark = pytest.mark.django_db(transaction=True)


def by_path(run: DagRun, task_id: str) -> dict[tuple[int, ...], tuple[str, int, Any]]:
    """path -> (state, try_number, result) of a nested task's instances."""
    values = dict(run.xcoms.filter(task_id=task_id, key="return_value").values_list("map_index", "value"))
    return {tuple(path): (state, tries, values.get(mi)) for mi, path, state, tries in TaskInstance.objects.filter(
        dag_run=run, task_id=task_id, map_index__gte=0).values_list("map_index", "map_path", "state", "try_number")}


class NestedMappingOnTheLiveStackTests:
    def test_it_runs_nested_levels_and_reruns_one_outer_index_alone(self, tmp_path: Path, live_stack: Callable[..., LiveStack]) -> None:
        process_dags_folder()
        stack = live_stack()
        run = wait_for_dag_run(create_dag_run(dag_id="example_nested_mapping"), timeout=RUN_TIMEOUT_SEC)
        assert run.state == "success", stack.report()
        fetch = by_path(run, "crawl.fetch")
        assert {p: (s, v) for p, (s, _t, v) in fetch.items()} == {
            (0, 0): ("success", 12), (0, 1): ("success", 12),
            (1, 0): ("success", 11), (1, 1): ("success", 11), (1, 2): ("success", 11),
            (2, 0): ("success", 12)}
        assert dict(TaskInstance.objects.filter(dag_run=run, task_id="crawl.fetch", map_path=[1, 2])
                    .values_list("map_index", "rendered_map_index")).popitem()[1] == "beta/page-2"
        assert list(run.xcoms.filter(task_id="grand_total").values_list("value", flat=True)) == [69]
        check = by_path(run, "audit.zone.check")
        assert {p: v for p, (_s, _t, v) in check.items()} == {
            (0, 0): "north:n1 ok", (0, 1): "north:n2 ok", (0, 2): "north:n3 ok", (1, 0): "south:s1 ok", (1, 1): "south:s2 ok"}

        # One outer index again: beta's three pages run a second time, the others keep their try.
        assert clear_outer_index(dag_run=run, task_id="crawl.fetch", prefix=[1], downstream=True) == 5  # 3 pages, site_total, grand_total
        run = wait_for_dag_run(run, timeout=RUN_TIMEOUT_SEC)
        assert run.state == "success", stack.report()
        assert {p: t for p, (_s, t, _v) in by_path(run, "crawl.fetch").items()} == {
            (0, 0): 1, (0, 1): 1, (1, 0): 2, (1, 1): 2, (1, 2): 2, (2, 0): 1}

        # gamma's list made again: only gamma's fetch is expanded again (its one page runs a second time).
        clear_task_instances(dag_run=run, task_id="crawl.list_pages", map_indexes=[2], downstream=True)
        run = wait_for_dag_run(run, timeout=RUN_TIMEOUT_SEC)
        assert run.state == "success", stack.report()
        assert {p: (s, t) for p, (s, t, _v) in by_path(run, "crawl.fetch").items()} == {
            (0, 0): ("success", 1), (0, 1): ("success", 1), (1, 0): ("success", 2), (1, 1): ("success", 2),
            (1, 2): ("success", 2), (2, 0): ("success", 2)}
        assert list(run.xcoms.filter(task_id="grand_total").values_list("value", flat=True)) == [69]
        # No placeholder is left once every outer index expanded.
        assert not TaskInstance.objects.filter(dag_run=run, task_id="crawl.fetch", map_index__lt=0).exists()
