"""Variables CRUD (runs/web/api_v2/variables.py)."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from runs.models import Variable
from tests.runs.web.api_v2.conftest import ApiClient

JSON = "application/json"

pytestmark = pytest.mark.django_db


class VariableTests:
    def test_it_creates_reads_updates_and_deletes_a_variable(self, api: Callable[[str | None], ApiClient]) -> None:
        admin = api("Admin")
        created = admin.post("/api/v2/variables", {"key": "sizes", "value": [1, 2], "description": "d"}, content_type=JSON)
        assert created.status_code == 201
        assert created.json() == {"key": "sizes", "value": "[1, 2]", "description": "d", "is_encrypted": False, "team_name": None}
        assert Variable.objects.get(key="sizes").val == [1, 2]  # stored as JSON, which DAGs expand over
        assert api("Viewer").get("/api/v2/variables/sizes").json()["value"] == "[1, 2]"
        patched = admin.patch("/api/v2/variables/sizes", {"key": "sizes", "value": "small"}, content_type=JSON,
                              QUERY_STRING="update_mask=value")
        assert patched.json()["value"] == "small"
        assert Variable.objects.get(key="sizes").description == "d"
        assert admin.post("/api/v2/variables", {"key": "sizes", "value": 1}, content_type=JSON).status_code == 409
        assert admin.delete("/api/v2/variables/sizes").status_code == 204
        assert api("Viewer").get("/api/v2/variables/sizes").status_code == 404

    def test_it_lists_variables_by_key_pattern(self, api: Callable[[str | None], ApiClient]) -> None:
        Variable.objects.create(key="alpha", val=1)
        Variable.objects.create(key="beta", val=2)
        listed = api("Viewer").get("/api/v2/variables", {"variable_key_pattern": "et"}).json()
        assert listed == {"variables": [{"key": "beta", "value": "2", "description": None, "is_encrypted": False, "team_name": None}],
                          "total_entries": 1}
