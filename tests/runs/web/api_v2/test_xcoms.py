"""XCom entries (runs/web/api_v2/xcoms.py)."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from runs.models import DagRun, XCom
from tests.runs.web.api_v2.conftest import ApiClient

XCOMS = "/api/v2/dags/api_add/dagRuns/r1/taskInstances/add/xcomEntries"

pytestmark = pytest.mark.django_db


class XComTests:
    def test_it_lists_entries_by_map_index_and_reads_one_value(self, api: Callable[[str | None], ApiClient], mapped_run: DagRun) -> None:
        XCom.objects.create(dag_run=mapped_run, task_id="add", map_index=3, key="return_value", value={"n": 13})
        viewer = api("Viewer")
        listed = viewer.get(XCOMS, {"order_by": "map_index"}).json()
        assert [(x["key"], x["map_index"]) for x in listed["xcom_entries"]] == [("return_value", 1), ("return_value", 3)]
        assert viewer.get(XCOMS, {"map_index": 3}).json()["total_entries"] == 1
        assert viewer.get(f"{XCOMS}/return_value", {"map_index": 3}).json()["value"] == {"n": 13}
        assert viewer.get(f"{XCOMS}/return_value", {"map_index": 3, "stringify": True}).json()["value"] == '{"n": 13}'
        assert viewer.get(f"{XCOMS}/return_value").status_code == 404  # map_index -1 by default

    def test_it_shows_the_masked_copy_of_a_value_that_held_a_secret(self, api: Callable[[str | None], ApiClient],
                                                                  mapped_run: DagRun) -> None:
        XCom.objects.filter(dag_run=mapped_run, map_index=1).update(value={"password": "hunter2"}, display={"password": "***"})
        assert api("Viewer").get(f"{XCOMS}/return_value", {"map_index": 1}).json()["value"] == {"password": "***"}
