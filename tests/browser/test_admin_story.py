"""Stories of the administering part of the dashboard, in a real browser: the trigger form built
from a DAG's Params, pausing a DAG, users and roles, the Variables page, and the audit log."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from runs.models import AuditLog, DagModel, DagRun, Variable
from runs.roles import set_user_role
from runs.scheduling.dag_processing import process_dags_folder
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PARAMS_DAG = """\
from __future__ import annotations
from dagsapp.sdk import DAG, EmptyOperator, Param

with DAG("nightly_export", schedule=None, description="Exports the day's orders", params={
    "count": Param(3, type="integer", minimum=1, maximum=10, title="Files", description="How many files to write (1 to 10)"),
    "region": Param("eu", type="string", enum=["eu", "us", "apac"], description="Where the data lives"),
    "full_refresh": Param(False, type="boolean", description="Rebuild everything instead of the day's delta"),
    "owner": Param(type="string", minLength=2, description="Who asked for this export"),
    "tables": Param(["orders"], type="array", items={"type": "string"}, description="Tables to export, as a JSON list"),
}):
    EmptyOperator(task_id="export") >> EmptyOperator(task_id="notify")
"""
PASSWORD = "a-long-passphrase-42"


def user(name: str, role: str) -> User:
    u = User.objects.create_user(username=name, password=PASSWORD)
    set_user_role(u, role)  # type: ignore[arg-type]
    return u


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".topbar .who")).to_have_text(name)


def log_out(page: Page, base: str) -> None:
    page.goto(f"{base}/")
    page.locator(".topbar .logout button").click()
    expect(page).to_have_url(re.compile(r"/login/"))


@pytest.fixture
def nightly(tmp_path: Path) -> str:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "nightly_export.py").write_text(textwrap.dedent(PARAMS_DAG))
    process_dags_folder(folder)
    return "nightly_export"


class TriggerFormStoryTests:
    def test_an_operator_fills_the_params_form_fixes_a_mistake_and_lands_on_the_new_run(
        self, live_server: Any, page: Page, nightly: str,
    ) -> None:
        user("olga", "operator")
        base = live_server.url
        log_in(page, base, "olga")
        page.goto(f"{base}/dags/{nightly}/grid/")
        page.locator("#trigger").click()

        # One field per Param, defaults filled in, descriptions beside them.
        expect(page.get_by_label("Files")).to_have_value("3")
        expect(page.locator("#param-count-help")).to_have_text("How many files to write (1 to 10)")
        expect(page.get_by_label("region")).to_have_value('"eu"')
        expect(page.get_by_label("full_refresh")).not_to_be_checked()
        expect(page.get_by_label("tables")).to_have_value('[\n  "orders"\n]')
        expect(page.locator("#advanced")).not_to_have_attribute("open", "")
        folder = Path(settings.BASE_DIR) / "var" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / "trigger_form.png"), full_page=True)

        page.get_by_label("Files").fill("11")
        page.get_by_label("region").select_option(label="apac")
        page.get_by_label("full_refresh").check()
        page.locator("#trigger-submit").click()
        # Each mistake beside its field; nothing created; what was typed is kept.
        expect(page.locator("#param-count-error")).to_have_text("11 is greater than the maximum of 10")
        expect(page.locator("#param-owner-error")).to_have_text("a value is required")
        expect(page.get_by_label("region")).to_have_value('"apac"')
        expect(page.get_by_label("full_refresh")).to_be_checked()
        assert not DagRun.objects.exists()
        screenshot(page, "trigger-form-errors")

        page.get_by_label("Files").fill("4")
        page.get_by_label("owner").fill("finance")
        page.locator("#advanced summary").click()
        page.locator("#run_id").fill("export-for-finance")
        page.locator("#trigger-submit").click()

        # The Grid, the new run selected and its panel open.
        expect(page).to_have_url(f"{base}/dags/{nightly}/grid/?run_id=export-for-finance")
        expect(page.locator("#run-info .run-id")).to_have_text("export-for-finance")
        expect(page.locator("#run-panel h2")).to_contain_text("export-for-finance")
        expect(page.locator("#messages")).to_contain_text("Triggered run export-for-finance.")
        run = DagRun.objects.get()
        assert run.conf == {"count": 4, "region": "apac", "full_refresh": True, "owner": "finance", "tables": ["orders"]}


class PauseStoryTests:
    def test_an_operator_pauses_from_the_list_and_unpauses_from_the_dag_page(
        self, live_server: Any, page: Page, nightly: str,
    ) -> None:
        user("olga", "operator")
        base = live_server.url
        log_in(page, base, "olga")
        switch = page.get_by_role("switch", name=f"Active: {nightly}")
        expect(switch).to_have_attribute("aria-checked", "true")
        switch.click()
        paused = page.get_by_role("switch", name=f"Paused: {nightly}")
        expect(paused).to_have_attribute("aria-checked", "false")
        assert DagModel.objects.get(dag_id=nightly).is_paused

        page.locator(f"#dag-{nightly} a.dag-id").click()
        expect(page.locator("#dag-header").get_by_role("switch")).to_have_text("Paused")
        page.locator("#dag-header").get_by_role("switch").focus()
        page.keyboard.press("Enter")  # reachable by keyboard
        expect(page.locator("#dag-header").get_by_role("switch")).to_have_text("Active")
        assert not DagModel.objects.get(dag_id=nightly).is_paused
        assert list(AuditLog.objects.order_by("id").values_list("event", "owner")) == [("pause", "olga"), ("unpause", "olga")]


class UsersAndRolesStoryTests:
    def test_an_admin_gives_a_new_user_a_role_and_a_viewer_sees_no_action(
        self, live_server: Any, page: Page, nightly: str,
    ) -> None:
        user("ada", "admin")
        base = live_server.url
        log_in(page, base, "ada")
        page.locator("#nav-admin").click()
        page.get_by_role("link", name="Users").first.click()
        page.get_by_role("link", name="Add user").click()
        page.locator("#id_username").fill("vic")
        page.locator("#id_role").select_option("viewer")
        page.locator("#id_password1").fill(PASSWORD)
        page.locator("#id_password2").fill(PASSWORD)
        page.locator("input[name=_save]").click()
        expect(page.locator("#id_role")).to_have_value("viewer")
        page.goto(f"{base}/admin/auth/user/")
        expect(page.locator("tr", has_text="vic").locator("td.field-role")).to_have_text("Viewer")
        screenshot(page, "admin-users")
        log_out(page, base)

        log_in(page, base, "vic")
        page.goto(f"{base}/dags/{nightly}/grid/")
        expect(page.locator("#trigger")).to_have_count(0)
        expect(page.get_by_role("switch")).to_have_count(0)
        expect(page.locator("#nav-admin")).to_have_count(0)
        # An action's URL typed by hand: refused, nothing created.
        response = page.goto(f"{base}/dags/{nightly}/trigger/")
        assert response is not None and response.status == 403
        status = page.evaluate("""async (url) => {
            const token = document.cookie.match(/csrftoken=([^;]+)/);
            const r = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token ? token[1] : ""}, body: new URLSearchParams({is_paused: "true"})});
            return r.status; }""", f"{base}/dags/{nightly}/pause/")
        assert status == 403
        assert not DagModel.objects.get(dag_id=nightly).is_paused and not DagRun.objects.exists()


class VariablesStoryTests:
    def test_an_operator_manages_variables_and_secrets_stay_hidden(self, live_server: Any, page: Page) -> None:
        user("olga", "operator")
        user("vic", "viewer")
        base = live_server.url
        log_in(page, base, "olga")
        page.locator("#nav-variables").click()
        page.locator("#variable-new").click()
        page.locator("#id_key").fill("warehouse_password")
        page.locator("#id_value").fill("hunter2-long")  # not JSON: text needs quotes
        page.locator("#variable-save").click()
        expect(page.locator("#value-error")).to_contain_text("Not valid JSON")
        page.locator("#id_value").fill('"hunter2-long"')
        page.locator("#variable-save").click()
        page.locator("#variable-new").click()
        page.locator("#id_key").fill("regions")
        page.locator("#id_value").fill('["eu", "us"]')
        page.locator("#variable-save").click()

        table = page.locator("#variables")
        expect(table).to_contain_text('["eu", "us"]')
        expect(table.locator("tr", has_text="warehouse_password")).to_contain_text("***")
        expect(table).not_to_contain_text("hunter2")

        # Editing the secret shows nothing of it; a blank value keeps it.
        table.locator("tr", has_text="warehouse_password").get_by_role("link", name="Edit").click()
        expect(page.locator("#id_value")).to_have_value("")
        expect(page.locator("#value-help")).to_contain_text("Leave blank to keep it")
        page.locator("#id_description").fill("for the nightly export")
        page.locator("#variable-save").click()
        assert Variable.objects.get(key="warehouse_password").val == "hunter2-long"
        expect(table).to_contain_text("for the nightly export")

        table.locator("tr", has_text="regions").get_by_role("link", name="Delete").click()
        page.locator("#variable-delete-confirm").click()
        expect(page.locator("#variables")).not_to_contain_text("regions")
        log_out(page, base)

        log_in(page, base, "vic")
        page.goto(f"{base}/variables/")
        expect(page.locator("#variables")).to_contain_text("warehouse_password")
        expect(page.locator("#variables")).not_to_contain_text("hunter2")
        expect(page.locator("#variable-new")).to_have_count(0)
        expect(page.locator("#variables").get_by_role("link", name="Edit")).to_have_count(0)


class AuditLogStoryTests:
    def test_a_viewer_reads_who_did_what_per_dag_and_per_run(self, live_server: Any, page: Page, nightly: str) -> None:
        user("olga", "operator")
        user("vic", "viewer")
        base = live_server.url
        log_in(page, base, "olga")
        page.goto(f"{base}/dags/{nightly}/trigger/")
        page.get_by_label("owner").fill("finance")
        page.locator("#trigger-submit").click()
        expect(page.locator("#run-panel")).to_be_visible()
        page.locator("#dag-header").get_by_role("switch").click()
        expect(page.locator("#dag-header").get_by_role("switch")).to_have_text("Paused")
        log_out(page, base)

        log_in(page, base, "vic")
        page.goto(f"{base}/dags/{nightly}/grid/")
        page.locator("#audit-link").click()
        rows = page.locator("#audit-table tbody tr.audit-row")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text("pause")
        expect(rows.nth(1)).to_contain_text("trigger")
        expect(rows.nth(1)).to_contain_text("olga")
        expect(rows.nth(1)).to_contain_text("dashboard")
        page.locator("#audit-event").select_option("trigger")  # filters on change
        expect(rows).to_have_count(1)
        screenshot(page, "audit-log")

        # From the run's panel: that run's log only.
        run = DagRun.objects.get()
        page.goto(f"{base}/dags/{nightly}/grid/?{urlencode({'run_id': run.run_id})}")
        page.locator("#run-audit-link").click()
        expect(page.locator("#audit-run")).to_have_value(run.run_id)
        expect(rows).to_have_count(1)
        # Nothing to edit anywhere.
        expect(page.locator("main form[method=post]")).to_have_count(0)
