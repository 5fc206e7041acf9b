"""The Variables page: listed for everyone, edited by Operators, secrets masked for all."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from runs.models import AuditLog, Variable

pytestmark = pytest.mark.django_db


class VariableListTests:
    def test_it_lists_values_and_masks_secret_looking_keys_for_everyone(self, viewer_client: Client, operator_client: Client) -> None:
        Variable.objects.create(key="region", val={"name": "eu-west"}, description="where")
        Variable.objects.create(key="db_password", val="hunter2-long")
        Variable.objects.create(key="SLACK_API_KEY", val="xoxb-123")
        Variable.objects.create(key="auth_token", val=["t1"])
        for client in (viewer_client, operator_client):
            html = client.get("/variables/").content.decode()
            assert "eu-west" in html and "where" in html
            for secret in ("hunter2", "xoxb", "t1"):
                assert secret not in html
            assert html.count('<span class="masked" title="hidden: the key looks secret">***</span>') == 3

    def test_it_searches_and_pages_in_queries_that_do_not_grow(self, viewer_client: Client) -> None:
        Variable.objects.bulk_create([Variable(key=f"k{i:03d}", val=i) for i in range(5)])
        with CaptureQueriesContext(connection) as few:
            viewer_client.get("/variables/")
        Variable.objects.bulk_create([Variable(key=f"k{i:03d}", val=i) for i in range(5, 120)])
        with CaptureQueriesContext(connection) as many:
            html = viewer_client.get("/variables/", {"page": "2"}).content.decode()
        assert len(many.captured_queries) == len(few.captured_queries)
        assert "page 2 of 3 · 120 Variables" in html and "<code>k050</code>" in html and "<code>k049</code>" not in html
        html = viewer_client.get("/variables/", {"q": "k11"}).content.decode()
        assert html.count("<code>k11") == 10

    def test_it_shows_no_editing_to_a_viewer(self, viewer_client: Client) -> None:
        Variable.objects.create(key="region", val="eu")
        html = viewer_client.get("/variables/").content.decode()
        assert "New Variable" not in html and "/edit/" not in html and "/delete/" not in html


class VariableEditTests:
    def test_it_creates_a_variable_and_records_it_without_its_value(self, operator_client: Client) -> None:
        response = operator_client.post("/variables/new/", {"key": "api_token", "value": '"s3cr3t-value"', "description": "d"})
        assert response.status_code == 302
        assert Variable.objects.get().val == "s3cr3t-value"
        entry = AuditLog.objects.get()
        assert (entry.event, entry.owner, entry.extra) == ("variable_create", "op", {"key": "api_token"})

    def test_it_says_beside_each_field_what_is_wrong(self, operator_client: Client) -> None:
        Variable.objects.create(key="taken", val=1)
        html = operator_client.post("/variables/new/", {"key": "", "value": "eu"}).content.decode()
        assert 'id="key-error" role="alert">This field is required.</div>' in html
        assert 'id="value-error" role="alert">Not valid JSON: Expecting value (line 1, column 1). Text goes in double quotes: &quot;eu&quot;.</div>' in html
        html = operator_client.post("/variables/new/", {"key": "taken", "value": "2"}).content.decode()
        assert 'id="key-error" role="alert">A Variable &#x27;taken&#x27; already exists</div>' in html
        html = operator_client.post("/variables/new/", {"key": "n", "value": "NaN"}).content.decode()
        assert 'id="value-error"' in html
        assert list(Variable.objects.values_list("key", "val")) == [("taken", 1)]
        assert not AuditLog.objects.exists()

    def test_it_edits_a_value_and_never_shows_a_secret_one(self, operator_client: Client) -> None:
        plain = Variable.objects.create(key="sizes", val=[1, 2])
        secret = Variable.objects.create(key="db_password", val="hunter2-long", description="old")
        assert "[\n  1,\n  2\n]" in operator_client.get(f"/variables/{plain.pk}/edit/").content.decode()
        form = operator_client.get(f"/variables/{secret.pk}/edit/").content.decode()
        assert "hunter2" not in form and "leave blank to keep" in form
        # Blank keeps the secret; the description still changes.
        assert operator_client.post(f"/variables/{secret.pk}/edit/", {"value": "", "description": "new"}).status_code == 302
        secret.refresh_from_db()
        assert (secret.val, secret.description) == ("hunter2-long", "new")
        assert operator_client.post(f"/variables/{secret.pk}/edit/", {"value": '"rotated-pw"', "description": "new"}).status_code == 302
        secret.refresh_from_db()
        assert secret.val == "rotated-pw"
        # The key cannot be changed by posting another.
        operator_client.post(f"/variables/{plain.pk}/edit/", {"key": "renamed", "value": "3"})
        plain.refresh_from_db()
        assert (plain.key, plain.val) == ("sizes", 3)
        assert [e["fields"] for e in AuditLog.objects.order_by("id").values_list("extra", flat=True)] == [
            ["description"], ["value", "description"], ["value", "description"]]

    def test_it_asks_before_deleting_and_deletes_on_post(self, operator_client: Client) -> None:
        var = Variable.objects.create(key="old_secret", val="x-long-value")
        page = operator_client.get(f"/variables/{var.pk}/delete/").content.decode()
        assert "Delete Variable old_secret?" in page and "x-long-value" not in page
        assert Variable.objects.exists()
        assert operator_client.post(f"/variables/{var.pk}/delete/").status_code == 302
        assert not Variable.objects.exists()
        assert AuditLog.objects.get().event == "variable_delete"
        assert operator_client.post(f"/variables/{var.pk}/delete/").status_code == 404

    def test_it_escapes_keys_and_values(self, operator_client: Client) -> None:
        Variable.objects.create(key="<b>k</b>", val="<script>alert(1)</script>", description="<i>d</i>")
        html = operator_client.get("/variables/").content.decode()
        assert "<script>alert" not in html and "<b>k</b>" not in html and "<i>d</i>" not in html


class VariableApiMaskingTests:
    def test_it_masks_secret_looking_keys_in_the_rest_api_too(self, operator_client: Client) -> None:
        Variable.objects.create(key="db_password", val="hunter2-long")
        Variable.objects.create(key="region", val="eu")
        body = operator_client.get("/api/v2/variables").json()
        assert {v["key"]: v["value"] for v in body["variables"]} == {"db_password": "***", "region": "eu"}
