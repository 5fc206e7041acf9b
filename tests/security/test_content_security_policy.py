"""The Content-Security-Policy: sent on every response, and the pages need nothing it forbids."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

from django.conf import settings
from django.test import Client

from runs.models import DagRun
from tests.security.test_requests import ids_for
from tests.url_routes import site_routes

POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:;"
          " object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
ROOT = Path(__file__).resolve().parents[2]

# What the policy refuses to run: inline <script> (one with src= is fine), on*= handlers, htmx's
# hx-on and trigger filters and js: values (all eval), javascript: URLs.
INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"""[\s"'/]on[a-z]+\s*=""", re.I)
HTMX_EVAL = re.compile(r"""\bhx-on[:-]|hx-trigger="[^"]*\[|hx-vals='?"?\s*js:|hx-vars""", re.I)
JS_URL = re.compile(r"javascript:", re.I)


def _script_problems(text: str) -> list[str]:
    return [m[0] for pattern in (INLINE_SCRIPT, HANDLER, HTMX_EVAL, JS_URL) for m in pattern.finditer(text)]


class ContentSecurityPolicyTests:
    def test_it_is_the_policy_in_the_settings(self) -> None:
        assert settings.CONTENT_SECURITY_POLICY == POLICY

    def test_it_sends_the_policy_on_every_page(self, operator_client: Client, client: Client, hostile_run: DagRun) -> None:
        good = {"dag_id": "hostile", "run_id": hostile_run.run_id, "task_id": "show", "map_index": "0", "try_number": "1"}
        seen = 0
        for route in site_routes():
            url = route.url(ids_for(route, good))
            for c, headers in ((operator_client, {}), (operator_client, {"HTTP_HX_REQUEST": "true"}), (client, {})):
                response = c.get(url, **headers)
                assert response["Content-Security-Policy"] == POLICY, (route.name, response.status_code)
                seen += 1
        # Error pages, redirects and refusals too.
        for response in (operator_client.get("/no/such/page/"), operator_client.get("/api/nothing"),
                         operator_client.get("/?q=a%00"), client.post("/dags/hostile/trigger/")):
            assert response["Content-Security-Policy"] == POLICY, response.status_code
        assert seen >= 40

    def test_its_pages_have_no_inline_script(self, operator_client: Client, client: Client, hostile_run: DagRun) -> None:
        assert _script_problems(client.get("/login/").content.decode()) == []
        base = f"/dags/hostile/runs/{hostile_run.run_id}/tasks/show"
        pages = ["/", "/dags/hostile/grid/", f"/dags/hostile/graph/?{urlencode({'run_id': hostile_run.run_id})}", f"{base}/",
                 f"{base}/durations/", f"{base}/?map_index=0",
                 *(f"{base}/mapped/0/?tab={tab}" for tab in ("log", "xcom", "rendered", "details")),
                 f"{base}/mapped/0/?tab=log&q=script&match=0", "/dags/hostile/code/", "/runs/", "/task-instances/?state=success"]
        for url in pages:
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                response = operator_client.get(url, **headers)
                assert response.status_code == 200, url
                assert _script_problems(response.content.decode()) == [], (url, headers)
        assert "<svg" in operator_client.get(f"/dags/hostile/graph/?{urlencode({'run_id': hostile_run.run_id})}").content.decode()

    def test_its_templates_and_drawings_have_no_inline_script_or_handlers(self) -> None:
        sources = [*sorted((ROOT / "templates").rglob("*.html")), ROOT / "runs" / "web" / "graph_svg.py"]
        assert len(sources) > 10
        for path in sources:
            assert _script_problems(path.read_text()) == [], path

    def test_it_finds_what_it_looks_for(self) -> None:
        for bad in ('<script>alert(1)</script>', '<a onclick="x()">', "<svg/onload=x()>", '<div hx-on:click="x()">',
                    '<div hx-trigger="every 2s [idle(this)]">', '<a href="JavaScript:x()">', '<div hx-vals=\'js:{a: 1}\'>'):
            assert _script_problems(bad), bad
        assert _script_problems('<script src="/static/js/app.js" defer></script><a href="/x" data-on="1">') == []
