"""Every view needs a login; roles decide who may change anything."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from runs.models import DagRun

SAMPLE_KWARGS: dict[str, Any] = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": 0, "try_number": 1, "pk": 1}
# /health answers monitors without a login (it shows no secrets: statuses and heartbeat times).
PUBLIC = {"runs:login", "runs:health"}


def _patterns(resolver: URLResolver, prefix: str = "") -> list[tuple[str, URLPattern]]:
    out = []
    for p in resolver.url_patterns:
        ns = f"{p.namespace}:" if isinstance(p, URLResolver) and p.namespace else prefix
        if isinstance(p, URLResolver):
            out += _patterns(p, ns)
        else:
            out.append((f"{prefix}{p.name}", p))
    return out


class LoginRequiredTests:
    @pytest.mark.django_db
    def test_it_requires_login_on_every_view(self, client: Client) -> None:
        from django.urls import reverse

        names = [name for name, _ in _patterns(get_resolver()) if name.startswith("runs:") and name not in PUBLIC]
        assert "runs:grid" in names and "runs:api_mapped_instances" in names
        for name in names:
            _, pattern = next(p for p in _patterns(get_resolver()) if p[0] == name)
            kwargs = {k: v for k, v in SAMPLE_KWARGS.items() if k in pattern.pattern.converters}
            url = reverse(name, kwargs=kwargs)
            for method in (client.get, client.post):
                response = method(url)
                if name == "runs:logout":
                    continue
                if response.status_code == 405:
                    continue
                if name.startswith("runs:api_"):
                    assert response.status_code in (401, 403), (name, method, response.status_code)
                else:
                    assert response.status_code == 302, (name, method, response.status_code)
                    assert response["Location"].startswith("/login/"), name

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

