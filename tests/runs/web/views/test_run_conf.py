"""A run's conf: collapsed and truncated under the grid, pretty-printed on demand (issue 12, point 3)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.test import Client, override_settings

from runs.models import DagRun

BIG = {"items": list(range(1000)), "note": "<b>x</b>"}


class RunConfTests:
    def test_it_shows_a_large_conf_collapsed_and_truncated_under_the_grid(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run(conf=BIG)
        body = operator_client.get("/dags/view_add/grid/", {"run_id": run.run_id}).content.decode()
        info = body.split('id="run-info"')[1].split("</details>")[0]
        assert f'<details class="conf" id="run-conf-{run.pk}"' in info
        assert "997, 998, 999" not in body, "the whole conf is not printed"
        assert "2 keys" in info
        assert f"/dags/view_add/runs/{run.run_id}/conf/" in info
        assert "<b>x</b>" not in info

    def test_it_pretty_prints_the_conf_on_demand(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run(conf=BIG)
        body = operator_client.get(f"/dags/view_add/runs/{run.run_id}/conf/", HTTP_HX_REQUEST="true").content.decode()
        assert "&quot;items&quot;: [\n    0,\n    1," in body
        assert "&lt;b&gt;x&lt;/b&gt;" in body and "<b>x</b>" not in body

    @override_settings(MAX_DISPLAY_CHARS=200)
    def test_it_truncates_a_conf_too_large_to_show_and_offers_the_whole_as_a_download(
        self, operator_client: Client, make_run: Callable[..., DagRun],
    ) -> None:
        run = make_run(conf=BIG)
        body = operator_client.get(f"/dags/view_add/runs/{run.run_id}/conf/", HTTP_HX_REQUEST="true").content.decode()
        assert "the first 200 are shown" in body
        assert "999" not in body
        response = operator_client.get(f"/dags/view_add/runs/{run.run_id}/conf/")
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content) == BIG

    def test_it_needs_a_login(self, client: Client, make_run: Callable[..., DagRun]) -> None:
        run = make_run(conf=BIG)
        assert client.get(f"/dags/view_add/runs/{run.run_id}/conf/").status_code == 302
