"""Hostile text from a DAG's data is shown as text on every page that shows it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.test import Client

from runs.models import DagRun, TaskInstance
from tests.security.conftest import XSS

RAW = "<script>alert(1)"
ESCAPED = "&lt;script&gt;alert(1)"


class EscapingTests:
    def test_it_stored_the_hostile_text_where_the_pages_read_it(self, hostile_run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=hostile_run, task_id="show", map_index=0)
        assert ti.rendered_map_index == XSS

    def test_it_shows_hostile_text_as_text_on_every_page(self, operator_client: Client, hostile_run: DagRun) -> None:
        base = f"/dags/hostile/runs/{hostile_run.run_id}/tasks/show"
        q = urlencode({"run_id": hostile_run.run_id})
        pages = [
            "/", "/dags/hostile/grid/", f"/dags/hostile/grid/?{q}",
            f"/dags/hostile/graph/?{q}", f"{base}/", f"{base}/durations/",
            *(f"{base}/mapped/0/?tab={tab}" for tab in ("log", "xcom", "rendered", "details")),
            f"{base}/mapped/0/log/", f"{base}/?map_index=0",
            f"{base}/mapped/0/?tab=log&q=script&match=0", "/dags/hostile/code/", f"/dags/hostile/code/?{q}",
            "/task-instances/", "/runs/?dag_id=hostile", "/?q=host",
        ]
        shown = 0
        for url in pages:
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = operator_client.get(url, **headers)
                assert response.status_code == 200, url
                body = response.content.decode()
                if response["Content-Type"].startswith("text/plain"):
                    # The raw log download: plain text that a browser is told not to sniff as HTML.
                    assert response["X-Content-Type-Options"] == "nosniff" and XSS in body, url
                    shown += 1
                    continue
                assert RAW not in body, (url, headers, body[body.find(RAW) - 200 : body.find(RAW) + 100])
                shown += ESCAPED in body
        assert shown >= len(pages)  # the text is there, escaped, not dropped

    def test_it_returns_hostile_text_as_json_strings_in_the_api(self, operator_client: Client, hostile_run: DagRun) -> None:
        base = f"/api/dags/hostile/runs/{hostile_run.run_id}/tasks/show/mapped"
        for url in (base, f"{base}/0", f"{base}/0/logs/1"):
            response = operator_client.get(url)
            assert response.status_code == 200 and response["Content-Type"] == "application/json", url
            json.loads(response.content)
            assert XSS in response.content.decode() or "\\u003cscript" in response.content.decode() or url == base
