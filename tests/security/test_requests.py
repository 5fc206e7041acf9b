"""Hostile ids in URLs, CSRF on every POST, no state change from a GET, no leaked credentials."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from runs.models import AuditLog, DagModel, DagRun, TaskInstance, TaskInstanceLog, Variable, XCom

HOSTILE_IDS = ["../../etc/passwd", "..%2F..%2Fsecret_key", "a\x00b", "<script>alert(1)</script>", "x" * 10_000, "%00", "."]
BAD_MAP_INDEXES = ["-2", "-1000", "99999999999999999999", "1e3", "abc", "0x10", "%20", "--1"]


def _patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    out: list[tuple[str, URLPattern]] = []
    for p in resolver.url_patterns:
        if isinstance(p, URLResolver) and p.namespace == "admin":
            continue  # Django's own admin (users and roles, the audit log read-only): tests/runs/test_admin.py
        if isinstance(p, URLResolver):
            out += _patterns(p, f"{p.namespace}:" if p.namespace else prefix)
        else:
            out.append((f"{prefix}{p.name}", p))
    return out


# The REST API v2 (runs/web/api_v2/) names its ids as Airflow does: the same values under other
# names, and ids of its own.
API_V2_ALIASES = {"dag_run_id": "run_id", "task_try_number": "try_number"}
API_V2_IDS = {"xcom_key": "return_value", "variable_key": "no-such-variable", "import_error_id": "1",
              "pk": "1"}  # a Variable's on the dashboard's Variables pages


def ids_for(pattern: URLPattern, good: dict[str, str]) -> dict[str, str]:
    """The pattern's ids from ``good`` (run_id, task_id, ...), whatever each view calls them."""
    return {k: good[k] if k in good else good[API_V2_ALIASES[k]] if k in API_V2_ALIASES else API_V2_IDS[k]
            for k in pattern.pattern.converters}


def _url(pattern: URLPattern, values: dict[str, str]) -> str:
    """The URL with each converter replaced by the given raw text, quoted as a browser would."""
    route = str(pattern.pattern)
    for name in pattern.pattern.converters:
        route = re.sub(rf"<(?:\w+:)?{name}>", lambda m, name=name: quote(values[name], safe=""), route)
    return "/" + route


def is_api_v2(name: str) -> bool:
    """Airflow's REST API and its token endpoint: a POST without its JSON body is a 422 there."""
    return name.startswith(("api_v2:", "api_auth:"))


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
        patterns = [(n, p) for n, p in _patterns(get_resolver()) if p.pattern.converters]
        assert len(patterns) >= 10
        checked = 0
        for name, pattern in patterns:
            for key in pattern.pattern.converters:
                values = HOSTILE_IDS if key != "map_index" else BAD_MAP_INDEXES + HOSTILE_IDS
                for value in values:
                    url = _url(pattern, {**ids_for(pattern, good), key: value})
                    for method in (operator_client.get, operator_client.post):
                        # The test client raises on a view's exception, so a 500 cannot pass silently.
                        status = method(url).status_code
                        refusals = (400, 404, 405, 422) if is_api_v2(name) else (400, 404, 405)
                        assert status in refusals, (name, key, value[:40], method.__name__, status)
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
        for name, pattern in _patterns(get_resolver()):
            if name in ("runs:logout",):
                continue
            url = _url(pattern, ids_for(pattern, good))
            for params in ("", "?action=clear&state=failed&map_index=0&conf=%7B%7D&downstream=on"):
                status = operator_client.get(url + params).status_code
                # The API answers a lookup it cannot make (no instance -1 of a mapped task) with 404.
                # (These URLs lack the REST API's /api/v2/ prefix: its leaf routes alone. `/variables` is
                # now the Variables page's, which Django's APPEND_SLASH answers with a 301.)
                assert status in ((200, 301, 404, 405, 422) if is_api_v2(name) else (200, 302, 405)), (url, status)
        assert _snapshot() == before

    def test_it_answers_head_wherever_it_answers_get(self, operator_client: Client, hostile_run: DagRun) -> None:
        good = {"dag_id": "hostile", "run_id": hostile_run.run_id, "task_id": "show", "map_index": "0", "try_number": "1",
                "pk": str(Variable.objects.create(key="k", val=1).pk)}
        checked = 0
        for name, pattern in _patterns(get_resolver()):
            url = _url(pattern, ids_for(pattern, good))
            get = operator_client.get(url)
            head = operator_client.head(url)
            assert head.status_code == get.status_code, (name, get.status_code, head.status_code)
            assert head.content == b"" and head["Content-Type"] == get["Content-Type"], name
            checked += get.status_code != 405
        assert checked >= 11


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
