"""The REST API's browsable page in a real browser: Swagger UI from the project's own static
files runs under the Content-Security-Policy and lists the operations."""
from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)


class ApiDocsPageTests:
    def test_a_user_browses_the_api_operations_under_the_csp(self, live_server: Any, page: Page) -> None:
        make_user("vera", "Viewer")
        refused: list[str] = []
        page.on("console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "vera")
        page.fill("input[name=password]", "pw-vera-long")
        page.get_by_role("button", name="Log in").click()
        page.goto(f"{live_server.url}/api/v2/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("Airflow REST API v2")
        expect(page.locator(".opblock-summary-path", has_text="/listMapped").first).to_be_visible()
        assert refused == []
