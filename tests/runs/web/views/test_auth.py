"""Every view needs a login; roles decide who may change anything."""

from __future__ import annotations

import pytest
from django.test import Client

from runs.models import DagRun
from tests.url_routes import site_routes

SAMPLE_IDS = {"dag_id": "d", "run_id": "r", "dag_run_id": "r", "task_id": "t", "map_index": "0", "try_number": "1",
              "task_try_number": "1", "pk": "1", "xcom_key": "k", "variable_key": "k", "import_error_id": "1"}
# Every other address needs a login: a new view that is left out of this list and answers without one fails below.
PUBLIC = {
    "runs:login",
    "runs:health",  # for monitors: statuses and heartbeat times, no secrets
    "favicon",
    "metrics",  # its own token (METRICS_TOKEN) or a request from this host: tests/runs/test_metrics.py
    "api_auth:create_token", "api_auth:create_token_cli",  # a username and password for a token
    "api_v2:get_version", "api_v2:get_health",  # as Airflow's, for clients and monitors before they log in
    # Django Ninja's: the OpenAPI document and its browsable page describe the API (no data), and the roots 404.
    "api_v2:openapi-json", "api_v2:openapi-view", "api_v2:api-root", "api_auth:api-root",
}
METHODS = ("get", "post", "put", "patch", "delete")


class LoginRequiredTests:
    @pytest.mark.django_db
    def test_it_requires_login_on_every_view(self, client: Client) -> None:
        """Every route the resolver knows (Django's admin aside: its own staff login), every method: without a
        login, a page sends to the login page, the REST API answers 401, or the method is not allowed."""
        routes = site_routes()
        names = {r.name for r in routes}
        assert {"runs:grid", "runs:api_mapped_instances", "api_v2:get_dags", "api_v2:patch_variable"} <= names
        assert names >= PUBLIC, PUBLIC - names  # no stale entry
        for route in routes:
            if route.name in PUBLIC or route.name == "runs:logout":
                continue
            url = route.url(SAMPLE_IDS)
            for method in METHODS:
                response = getattr(client, method)(url)
                if response.status_code == 405:
                    continue
                if route.is_api or route.name.startswith("runs:api_"):
                    assert response.status_code in (401, 403), (route.name, method, response.status_code)
                else:
                    assert response.status_code == 302, (route.name, method, response.status_code)
                    assert response["Location"].startswith("/login/"), route.name

    @pytest.mark.django_db
    def test_it_logs_in_and_ignores_an_offsite_next(self, client: Client) -> None:
        from django.contrib.auth.models import User

        User.objects.create_user(username="u", password="pw-long-enough")
        response = client.post("/login/?next=https://evil.example/", {"username": "u", "password": "pw-long-enough", "next": "https://evil.example/"})
        assert response.status_code == 302
        assert response["Location"] == "/"

    @pytest.mark.parametrize("method", ["get", "post"])
    def test_it_sends_a_logged_in_user_home_when_next_is_the_login_page(self, operator_client: Client, method: str) -> None:
        # Found by tests/security/test_fuzz.py: Django's LoginView raised ValueError (a 500) here.
        response = getattr(operator_client, method)("/login/?next=/login/", {"next": "/login/"})
        assert response.status_code == 302
        assert response["Location"] == "/"

    @pytest.mark.django_db
    def test_it_logs_out_to_the_login_page_when_next_is_the_logout_page_itself(self, operator_client: Client) -> None:
        # Found by the fuzz suite: Django rendered a "logged out" template the project does not have (a 500).
        response = operator_client.post("/logout/", {"next": "/logout/"})
        assert response.status_code == 302
        assert response["Location"] == "/login/"

    def test_it_logs_out_with_post_only(self, operator_client: Client) -> None:
        assert operator_client.get("/logout/").status_code == 405
        assert operator_client.post("/logout/").status_code == 302
        assert operator_client.get("/").status_code == 302

    def test_it_shows_the_login_page(self, client: Client, db: None) -> None:
        response = client.get("/login/")
        assert response.status_code == 200
        assert b'name="password"' in response.content


class ViewerTests:
    def test_it_forbids_every_action_to_a_viewer_and_changes_nothing(self, viewer_client: Client, run: DagRun) -> None:
        from runs.models import TaskInstance

        before = list(TaskInstance.objects.filter(dag_run=run).order_by("pk").values_list("state", "try_number", "max_tries"))
        base = f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add"
        from runs.models import AuditLog, DagModel, Variable

        var = Variable.objects.create(key="region", val="eu")
        run_base = f"/dags/{run.dag_id}/runs/{run.run_id}"
        posts = [
            (f"/dags/{run.dag_id}/trigger/", {"conf": "{}"}),
            (f"/dags/{run.dag_id}/pause/", {"is_paused": "true"}),
            (f"{run_base}/clear/", {}),
            (f"{run_base}/mark/", {"state": "failed"}),
            (f"{base}/clear/", {}),
            (f"{base}/clear-changed/", {}),
            (f"{base}/clear-outer/", {"outer": "0"}),
            (f"{base}/selection/", {"action": "success", "map_index": ["0", "1"]}),
            (f"{base}/mapped/2/clear/", {}),
            (f"{base}/mapped/2/mark/", {"state": "failed"}),
            ("/variables/new/", {"key": "k", "value": "1"}),
            (f"/variables/{var.pk}/edit/", {"value": "2"}),
            (f"/variables/{var.pk}/delete/", {}),
        ]
        for url, data in posts:
            assert viewer_client.post(url, data).status_code == 403, url
            assert viewer_client.post(url, data, HTTP_HX_REQUEST="true").status_code == 403, url
        after = list(TaskInstance.objects.filter(dag_run=run).order_by("pk").values_list("state", "try_number", "max_tries"))
        assert after == before
        assert DagRun.objects.filter(dag_id=run.dag_id).count() == 1
        assert not DagModel.objects.get(dag_id=run.dag_id).is_paused
        assert list(Variable.objects.values_list("key", "val")) == [("region", "eu")]
        assert not AuditLog.objects.exists()
        # The forms themselves are actions' pages: refused too.
        for url in (f"/dags/{run.dag_id}/trigger/", "/variables/new/", f"/variables/{var.pk}/edit/", f"/variables/{var.pk}/delete/"):
            assert viewer_client.get(url).status_code == 403, url

    def test_it_lets_a_viewer_read_everything(self, viewer_client: Client, run: DagRun) -> None:
        base = f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add"
        for url in ("/", f"/dags/{run.dag_id}/grid/", f"{base}/", f"{base}/mapped/0/?tab=log", f"{base}/mapped/0/?tab=xcom"):
            response = viewer_client.get(url)
            assert response.status_code == 200, url
            assert b"Mark success" not in response.content
        grid = viewer_client.get(f"/dags/{run.dag_id}/grid/").content.decode()
        assert "Trigger run" not in grid and 'role="switch"' not in grid
        listing = viewer_client.get("/").content.decode()
        assert 'role="switch"' not in listing and "/trigger/" not in listing
        for url in ("/variables/", "/audit/", f"/dags/{run.dag_id}/audit/"):
            page = viewer_client.get(url)
            assert page.status_code == 200, url
            assert "/edit/" not in page.content.decode() and 'method="post"' not in page.content.decode().split("</header>")[1]

    def test_it_rejects_a_get_on_actions(self, operator_client: Client, run: DagRun) -> None:
        base = f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add"
        assert operator_client.get(f"{base}/mapped/2/clear/").status_code == 405
        assert operator_client.get(f"/dags/{run.dag_id}/pause/").status_code == 405
        assert operator_client.get(f"/dags/{run.dag_id}/trigger/").status_code == 200  # the form; GET changes nothing
        assert DagRun.objects.filter(dag_id=run.dag_id).count() == 1

    def test_it_requires_csrf_on_posts(self, run: DagRun) -> None:
        from django.contrib.auth.models import User

        client = Client(enforce_csrf_checks=True)
        client.force_login(User.objects.create_superuser("root", password="pw-root-123"))
        assert client.post(f"/dags/{run.dag_id}/trigger/", {"conf": ""}).status_code == 403
        assert DagRun.objects.filter(dag_id=run.dag_id).count() == 1

