"""The mapped instances table and its API page make as many queries for 300 instances as for 3."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.models import DagRun


class MappedTableQueryCountTests:
    def _count(self, client: Client, url: str, params: dict[str, str]) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url, params).status_code == 200
        return len(ctx.captured_queries)

    def test_the_panel_and_the_api_page_do_not_grow_with_the_number_of_instances(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
        django_assert_num_queries: Any,
    ) -> None:
        params = {"state": "success", "order_by": "-duration"}
        counts = {}
        for n in (3, 300):
            run = make_run()
            expand_task(run, "add", n, state="success")
            panel = f"/dags/view_add/runs/{run.run_id}/tasks/add/"
            api = f"/api/dags/view_add/runs/{run.run_id}/tasks/add/mapped"
            counts[n] = (self._count(operator_client, panel, {**params}), self._count(operator_client, api, params))
            if n == 300:
                page = operator_client.get(api, {**params, "page": "2"}).json()
                assert page["total"] == 300 and page["pages"] == 6 and len(page["instances"]) == 50
        assert counts[3] == counts[300]
