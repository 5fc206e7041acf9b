"""Playwright (sync API) on the system's Chromium, against pytest-django's live_server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API runs an event loop in this thread, so Django takes the test's own
    # ORM calls (setting up rows, checking results) for calls from async code and refuses them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session", autouse=True)
def _end_live_server_sessions(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """The live server's request threads keep their database sessions open (CONN_MAX_AGE) past
    its stop, and the test database then cannot be dropped. Set up after the database and torn
    down before it (and after live_server), this ends the sessions left on *this* test database."""
    yield
    with django_db_blocker.unblock(), connection.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def _graph_cache(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def browser() -> Iterator[Browser]:
    # Per test, not per session: a Playwright loop alive while pytest-django creates or flushes
    # the test database would make those ORM calls look async too.
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    # Kept for a failing test, and on request (SCREENSHOT_DIR) for a look at the pages.
    page.screenshot(path=str(tmp_path / "last_page.png"), full_page=True)
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Saved into $SCREENSHOT_DIR when set, so a person can look at the pages the story went through."""
    folder = os.environ.get("SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
