"""Back and Forward: a URL that answers a whole page and an htmx fragment tells the browser's cache so."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils.cache import has_vary_header

from runs.models import DagRun


def _urls(run: DagRun) -> list[str]:
    base = f"/dags/view_add/runs/{run.run_id}/tasks/add"
    return ["/", "/dags/view_add/grid/", f"/dags/view_add/grid/?run_id={run.run_id}&task_id=add", "/dags/view_add/graph/",
            f"{base}/", f"{base}/?page=2", f"{base}/?map_index=1", f"{base}/mapped/1/", f"{base}/durations/"]


class VaryOnHtmxTests:
    @pytest.mark.parametrize("htmx", [False, True])
    def test_it_varies_every_page_on_hx_request(self, operator_client: Client, run: DagRun, htmx: bool) -> None:
        headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
        for url in _urls(run):
            response = operator_client.get(url, **headers)
            assert response.status_code == 200, url
            assert has_vary_header(response, "HX-Request"), url

    def test_it_answers_a_history_restore_with_the_whole_page(self, operator_client: Client, run: DagRun) -> None:
        """htmx asks for a page it has no snapshot of with HX-Request set; a fragment would replace the body."""
        for url in _urls(run):
            body = operator_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true").content.decode()
            assert "<html" in body and 'class="topbar"' in body, url
