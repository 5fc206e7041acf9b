"""Hostile ids in URLs, CSRF on every POST, no state change from a GET, no leaked credentials."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from runs.models import AuditLog, DagModel, DagRun, TaskInstance, TaskInstanceLog, Variable, XCom
from runs.web.api_v2.auth import issue_token
from tests.conftest import make_user
from tests.url_routes import Route, site_routes

HOSTILE_IDS = ["../../etc/passwd", "..%2F..%2Fsecret_key", "a\x00b", "<script>alert(1)</script>", "x" * 10_000, "%00", "."]
BAD_MAP_INDEXES = ["-2", "-1000", "99999999999999999999", "1e3", "abc", "0x10", "%20", "--1"]


# The REST API v2 (runs/web/api_v2/) names its ids as Airflow does: the same values under other
# names, and ids of its own.
API_V2_ALIASES = {"dag_run_id": "run_id", "task_try_number": "try_number"}
API_V2_IDS = {"xcom_key": "return_value", "variable_key": "no-such-variable", "import_error_id": "1",
              "pk": "1"}  # a Variable's on the dashboard's Variables pages


def ids_for(route: Route, good: dict[str, str]) -> dict[str, str]:
    """The route's ids from ``good`` (run_id, task_id, ...), whatever each view calls them."""
    return {k: good[k] if k in good else good[API_V2_ALIASES[k]] if k in API_V2_ALIASES else API_V2_IDS[k]
            for k in route.converters}


def _snapshot() -> list[object]:
    return [
        list(DagRun.objects.order_by("pk").values_list("pk", "state", "conf")),
        list(TaskInstance.objects.order_by("pk").values_list("pk", "state", "try_number", "max_tries", "end_date")),
        XCom.objects.count(), TaskInstanceLog.objects.count(), list(Variable.objects.values_list("key", "val")),
        list(DagModel.objects.values_list("dag_id", "is_paused")), AuditLog.objects.count(),
    ]


class HostileUrlTests:
    def test_it_answers_404_or_400_never_500_to_hostile_ids(self, operator_client: Client, hostile_run: DagRun) -> None:
        good = {"dag_id": "hostile", "run_id": hostile_run.run_id, "task_id": "show", "map_index": "0", "try_number": "1"}
        routes = [r for r in site_routes() if r.converters]
        assert len(routes) >= 10 and sum(r.name.startswith("api_v2:") for r in routes) >= 20
        checked = 0
        for route in routes:
            for key in route.converters:
                values = HOSTILE_IDS if key != "map_index" else BAD_MAP_INDEXES + HOSTILE_IDS
                for value in values:
                    url = route.url({**ids_for(route, good), key: value})
                    for method in (operator_client.get, operator_client.post):
                        # The test client raises on a view's exception, so a 500 cannot pass silently.
                        response = method(url)
                        refusals = (400, 404, 405, 422) if route.is_api else (400, 404, 405)
                        # A collection of the REST API filters by its ids, as Airflow's does: none match, an empty list.
                        empty = route.is_api and response.status_code == 200 and response.json().get("total_entries") == 0
                        assert response.status_code in refusals or empty, (route.name, key, value[:40], method.__name__, response.status_code)
                        checked += 1
        print(f"{checked} hostile requests")

    def test_it_ignores_hostile_query_parameters(self, operator_client: Client, hostile_run: DagRun) -> None:
        base = f"/dags/hostile/runs/{quote(hostile_run.run_id)}/tasks/show"
        for value in ["-1", "-2", "99999999999999999999", "abc", "\x00", "<b>", "x" * 10_000, "²", "1²", "٣"]:
            q = quote(value, safe="")
            for url in (f"/dags/hostile/grid/?run_id={q}", f"/dags/hostile/grid/?task_id={q}&map_index={q}",
                        f"{base}/?map_index={q}&state={q}&order_by={q}&page={q}&q={q}",
                        f"{base}/mapped/0/?tab={q}&try_number={q}", f"{base}/mapped/0/log/?try_number={q}&after={q}",
                        f"/api{base[len(''):]}/mapped?state={q}&order_by={q}&page={q}&q={q}",
                        f"/dags/hostile/graph/?run_id={q}&task_id={q}", f"/?page={q}"):
                status = operator_client.get(url).status_code
                assert status in (200, 400, 404), (url[:120], status)

    def test_it_reads_a_log_only_through_its_own_instance(self, operator_client: Client, hostile_run: DagRun) -> None:
        base = f"/api/dags/hostile/runs/{quote(hostile_run.run_id)}/tasks/show/mapped"
        other = TaskInstance.objects.get(dag_run=hostile_run, task_id="show", map_index=1)
        TaskInstanceLog.objects.create(task_instance=other, try_number=7, text="other instance's secret line")
        for try_number in ("7", "0", "2"):
            # Tries instance 0 never had: nothing to read, whoever else has such a try.
            response = operator_client.get(f"{base}/0/logs/{try_number}")
            assert response.status_code == 404 and "secret line" not in response.content.decode(), try_number
        assert operator_client.get(f"{base}/0/logs/-1").status_code == 404


class CsrfTests:
    def test_it_refuses_every_post_without_a_csrf_token(self, hostile_run: DagRun) -> None:
        from django.contrib.auth.models import User

        client = Client(enforce_csrf_checks=True)
        client.force_login(User.objects.create_superuser("root", password="pw-root-123-long"))
        before = _snapshot()
        base = f"/dags/hostile/runs/{hostile_run.run_id}/tasks/show"
        posts = [("/dags/hostile/trigger/", {"conf": ""}), (f"{base}/clear/", {}),
                 (f"{base}/selection/", {"action": "clear", "map_index": ["0", "1"]}),
                 (f"{base}/mapped/0/clear/", {}), (f"{base}/mapped/0/mark/", {"state": "failed"}), ("/logout/", {})]
        for url, data in posts:
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                assert client.post(url, data, **headers).status_code == 403, url
        assert _snapshot() == before
        assert client.get("/").status_code == 200  # still logged in: the logout was refused too


class SafeMethodTests:
    def test_it_changes_nothing_on_any_get(self, operator_client: Client, hostile_run: DagRun) -> None:
        good = {"dag_id": "hostile", "run_id": hostile_run.run_id, "task_id": "show", "map_index": "0", "try_number": "1",
                "pk": str(Variable.objects.create(key="k", val=1).pk)}
        before = _snapshot()
        routes = site_routes()
        assert any(r.url({}) == "/api/v2/dags" for r in routes)  # the API's own addresses, prefix and all
        for route in routes:
            if route.name in ("runs:logout",):
                continue
            url = route.url(ids_for(route, good))
            for params in ("", "?action=clear&state=failed&map_index=0&conf=%7B%7D&downstream=on"):
                status = operator_client.get(url + params).status_code
                # The API answers a lookup it cannot make (no instance -1 of a mapped task, no such Variable) with 404,
                # and a query it cannot read (a state no run has, the wait's missing interval) with 422.
                assert status in ((200, 404, 405, 422) if route.is_api else (200, 302, 405)), (url, status)
        assert _snapshot() == before

    def test_it_answers_head_wherever_it_answers_get(self, operator_client: Client, hostile_run: DagRun) -> None:
        good = {"dag_id": "hostile", "run_id": hostile_run.run_id, "task_id": "show", "map_index": "0", "try_number": "1",
                "pk": str(Variable.objects.create(key="k", val=1).pk)}
        checked = 0
        for route in site_routes():
            url = route.url(ids_for(route, good))
            get = operator_client.get(url)
            head = operator_client.head(url)
            assert head.status_code == get.status_code, (route.name, get.status_code, head.status_code)
            assert head.content == b"" and head["Content-Type"] == get["Content-Type"], route.name
            checked += get.status_code != 405
        assert checked >= 11


# Every write of the REST API v2 with a body it accepts, so that only the role check (or CSRF) can refuse it.
WRITE_BODIES: dict[str, dict[str, Any] | None] = {
    "Patch Dag": {"is_paused": True},
    "Trigger Dag Run": {"logical_date": None},
    "Patch Dag Run": {"state": "failed"},
    "Clear Dag Run": {"dry_run": False},
    "Patch Task Instance": {"new_state": "failed"},
    "Patch Task Instance Dry Run": {"new_state": "failed"},
    "Patch Task Instance By Map Index": {"new_state": "failed"},
    "Patch Task Instance Dry Run By Map Index": {"new_state": "failed"},
    "Post Clear Task Instances": {"dry_run": False, "only_failed": False},
    "Post Variable": {"key": "new-key", "value": "v"},
    "Patch Variable": {"value": "changed"},
    "Delete Variable": None,
}
# Read by monitors and clients before they log in, as Airflow's are.
PUBLIC_API = {"Get Version", "Get Health"}


@dataclass(frozen=True)
class Operation:
    method: str
    url: str
    summary: str
    secured: bool

    @property
    def writes(self) -> bool:
        return self.method != "GET"

    def call(self, client: Client, **headers: str) -> Any:
        body = WRITE_BODIES.get(self.summary)
        return getattr(client, self.method.lower())(self.url, json.dumps(body) if body is not None else None,
                                                    content_type="application/json", **headers)


def api_operations(run: DagRun) -> list[Operation]:
    """Every operation of the REST API v2 as its OpenAPI document lists it, at the ids of ``run``."""
    from runs.web.api_v2.api import api

    ids = {"dag_id": run.dag_id, "dag_run_id": run.run_id, "task_id": "show", "map_index": "0", "variable_key": "k",
           "task_try_number": "1", "try_number": "1", "xcom_key": "return_value", "import_error_id": "1"}
    schema = api.get_openapi_schema(path_prefix=reverse("api_v2:api-root").rstrip("/"))
    return [Operation(method.upper(), re.sub(r"{(\w+)}", lambda m: quote(ids[m.group(1)], safe=""), path), op["summary"],
                      bool(op.get("security")))
            for path, ops in schema["paths"].items() for method, op in ops.items()]


class ApiV2AccessTests:
    """The REST API v2 at its own addresses: a login for everything but the version and health, the Operator
    role for every write, and CSRF on a write made with the dashboard's session."""

    def test_it_answers_401_to_every_operation_without_a_login(self, client: Client, hostile_run: DagRun) -> None:
        operations = api_operations(hostile_run)
        assert len(operations) >= 30 and {o.summary for o in operations if not o.secured} == PUBLIC_API
        before = _snapshot()
        for op in operations:
            response = op.call(client)
            if op.summary in PUBLIC_API:
                assert response.status_code == 200, op
            else:
                assert (response.status_code, response.json()) == (401, {"detail": "Not authenticated"}), op
        assert _snapshot() == before

    def test_it_refuses_every_write_to_a_viewer_and_lets_an_operator_through(self, hostile_run: DagRun) -> None:
        Variable.objects.create(key="k", val="v")
        writes = [o for o in api_operations(hostile_run) if o.writes]
        # A new write must be listed here with a body it accepts: then this test tries its guard.
        assert {o.summary for o in writes} == set(WRITE_BODIES)
        viewer = Client(headers={"Authorization": f"Bearer {issue_token(make_user('vic', 'Viewer'))}"})
        before = _snapshot()
        for op in writes:
            response = op.call(viewer)
            assert (response.status_code, response.json()) == (403, {"detail": "Forbidden: this needs the Operator role"}), op
        assert _snapshot() == before
        # The same requests from an Operator are done (or find nothing left to do): the bodies pass, only the role refused.
        operator = Client(headers={"Authorization": f"Bearer {issue_token(make_user('ole', 'Operator'))}"})
        for op in writes:
            assert op.call(operator).status_code in (200, 201, 204, 400, 404), op
        assert _snapshot() != before

    def test_it_checks_csrf_on_every_write_made_with_the_session(self, hostile_run: DagRun) -> None:
        Variable.objects.create(key="k", val="v")
        client = Client(enforce_csrf_checks=True)
        client.force_login(make_user("ole", "Operator"))
        before = _snapshot()
        for op in api_operations(hostile_run):
            if op.writes:
                assert op.call(client).status_code == 403, op
        assert _snapshot() == before
        # With the token the page carries, the session's write goes through.
        client.get("/")
        token = client.cookies["csrftoken"].value
        assert client.patch("/api/v2/variables/k", json.dumps({"value": "new"}), content_type="application/json",
                            headers={"X-CSRFToken": token}).status_code == 200
        assert Variable.objects.get(key="k").val == "new"


class CredentialsTests:
    @pytest.mark.parametrize("secret_name", ["SECRET_KEY", "PASSWORD", "CELERY_BROKER_URL"])
    def test_it_never_shows_secrets_in_pages(self, operator_client: Client, hostile_run: DagRun, secret_name: str) -> None:
        secret = settings.SECRET_KEY if secret_name == "SECRET_KEY" else (
            settings.DATABASES["default"]["PASSWORD"] if secret_name == "PASSWORD" else settings.CELERY_BROKER_URL)
        if not secret:
            pytest.skip(f"no {secret_name} configured here")
        base = f"/dags/hostile/runs/{hostile_run.run_id}/tasks/show"
        for url in ("/", "/dags/hostile/grid/", f"{base}/", f"{base}/mapped/0/?tab=details", f"{base}/mapped/0/?tab=rendered",
                    f"/api{base}/mapped/0", "/dags/nope/grid/", f"{base}/mapped/99/"):
            assert secret not in operator_client.get(url).content.decode(), url

    def test_it_keeps_the_password_out_of_the_login_page_after_a_failed_login(self, client: Client, db: None) -> None:
        from django.contrib.auth.models import User

        User.objects.create_user(username="u", password="pw-correct-horse")
        body = client.post("/login/", {"username": "u", "password": "pw-wrong-horse-battery"}).content.decode()
        assert "pw-wrong-horse-battery" not in body and "pw-correct-horse" not in body
