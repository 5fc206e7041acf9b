"""Open pages notice new runs: a cheap watch that says when the runs changed (issue 12, point 7)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.models import DagRun


def _watch(client: Client, url: str, token: str = "") -> tuple[int, str, dict[str, str]]:
    response = client.get(url, {"token": token}, HTTP_HX_REQUEST="true")
    return response.status_code, response.content.decode(), dict(response.headers)


def _token(body: str) -> str:
    return body.split("token=")[1].split('"')[0]


class WatchTests:
    def test_it_says_nothing_until_a_run_is_added_then_tells_the_page(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        make_run()
        page = operator_client.get("/dags/view_add/grid/").content.decode()
        watch = page.split('id="runs-watch"')[1].split(">")[0]
        assert 'hx-trigger="every 5s"' in watch
        url = "/dags/view_add/watch/"
        status, _body, _headers = _watch(operator_client, url, _token(watch))
        assert status == 204
        make_run()  # as `manage.py dags trigger` would
        status, body, headers = _watch(operator_client, url, _token(watch))
        assert status == 200 and "runs-changed" in headers["HX-Trigger"]
        assert _watch(operator_client, url, _token(body))[0] == 204

    def test_it_notices_a_run_that_finished(self, operator_client: Client, run: DagRun) -> None:
        token = _token(operator_client.get("/").content.decode().split('id="runs-watch"')[1].split(">")[0])
        assert _watch(operator_client, "/watch/", token)[0] == 204
        DagRun.objects.filter(pk=run.pk).update(state="success")
        assert _watch(operator_client, "/watch/", token)[0] == 200

    def test_it_is_one_query_when_nothing_changed(self, operator_client: Client, make_run: Callable[..., DagRun]) -> None:
        for _ in range(3):
            make_run()
        token = _token(_watch(operator_client, "/dags/view_add/watch/")[1])
        operator_client.get("/")  # the session is loaded once before counting
        with CaptureQueriesContext(connection) as ctx:
            assert _watch(operator_client, "/dags/view_add/watch/", token)[0] == 204
        ours = [q["sql"] for q in ctx.captured_queries if "django_session" not in q["sql"] and "auth_user" not in q["sql"]]
        assert len(ours) == 1 and "runs_dagrun" in ours[0]

    def test_it_needs_a_login(self, client: Client, db: None) -> None:
        assert client.get("/watch/").status_code == 302

    def test_the_pages_offer_an_auto_refresh_toggle(self, operator_client: Client, run: DagRun) -> None:
        for url in ("/", "/dags/view_add/grid/"):
            assert 'id="auto-refresh"' in operator_client.get(url).content.decode()
