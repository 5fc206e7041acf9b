"""Issue 13's comfort in a real browser: time zones, dark mode, accessibility (axe-core over the six
main pages in both colour schemes, keyboard, focus, text size), and the grid's tooltips."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect

from runs.cli import run_dag_run_inline
from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import create_dag_run
from tests.browser.test_dashboard_story import log_in, settled, user

pytestmark = pytest.mark.django_db(transaction=True)

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def finished_run() -> DagRun:
    process_dags_folder()
    run = run_dag_run_inline(create_dag_run(dag_id="example_add"))
    assert run.state == "success"
    return run


def grid_url(base: str, run: DagRun, **query: Any) -> str:
    return f"{base}{reverse('runs:grid', args=['example_add'])}?{urlencode({'run_id': run.run_id, **query})}"


def instance_url(base: str, run: DagRun, task_id: str = "add", map_index: int = 1, **query: str) -> str:
    url = f"{base}{reverse('runs:task_instance', args=['example_add', run.run_id, task_id, map_index])}"
    return f"{url}?{urlencode(query)}" if query else url


def six_pages(base: str, run: DagRun) -> dict[str, str]:
    """The pages the issue names: the DAG list, the grid, the task panel (mapped instances), the
    task-instance page, the graph and the log."""
    return {
        "dag list": f"{base}/",
        "grid": grid_url(base, run),
        "task panel": grid_url(base, run, task_id="add"),
        "instance": instance_url(base, run),
        "graph": f"{base}{reverse('runs:graph', args=['example_add'])}?{urlencode({'run_id': run.run_id})}",
        "log": instance_url(base, run, tab="log"),
    }


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:4]}"
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


def background(page: Page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def luminance(css: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


class TimeZoneStoryTests:
    def test_a_user_reads_the_grid_instance_and_gantt_in_a_zone_of_their_choice(self, live_server: Any, browser: Browser) -> None:
        run = finished_run()
        user("tara", "Viewer")
        # A browser in New York, which the "browser's zone" choice must pick up through Intl.
        context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="America/New_York")
        context.set_default_timeout(15_000)
        page = context.new_page()
        base = live_server.url
        log_in(page, base, "tara")
        page.goto(grid_url(base, run))
        logical = run.logical_date
        expect(page.locator("#tz-current")).to_have_text("UTC")
        expect(page.locator("#run-details")).to_contain_text(f"{logical:%Y-%m-%d %H:%M:%S} UTC")

        # A named zone, typed with the zone names suggested.
        page.locator("#tz-menu summary").click()
        page.locator("#tz-zone").click()
        expect(page.locator("#tz-names option[value='Asia/Kolkata']")).to_have_count(1)
        page.locator("#tz-zone").fill("Asia/Kolkata")
        expect(page.locator("#tz-mode-named")).to_be_checked()
        page.locator("#tz-apply").click()
        expect(page.locator("#tz-current")).to_have_text("IST")
        kolkata = logical + timedelta(hours=5, minutes=30)
        expect(page.locator("#run-details")).to_contain_text(f"{kolkata:%Y-%m-%d %H:%M:%S} IST")
        expect(page.locator("#run-dates-zone")).to_have_text("logical dates, IST")
        expect(page.locator(".run-date").first).to_have_text(f"{kolkata:%m-%d %H:%M}")
        # The grid's run bar and the instance page follow; so does the Gantt (axis origin and tooltips).
        assert f"{kolkata:%Y-%m-%d %H:%M:%S} IST" in (page.locator(f"#run-{run.pk}").get_attribute("title") or "")
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=1)
        page.goto(instance_url(base, run))
        start = ti.start_date + timedelta(hours=5, minutes=30)  # type: ignore[operator]
        expect(page.locator("#ti-details")).to_contain_text(f"{start:%Y-%m-%d %H:%M:%S} IST")
        page.goto(f"{base}{reverse('runs:run_gantt', args=['example_add', run.run_id])}")
        expect(page.locator("#gantt-origin")).to_contain_text(" IST")
        bar_title = page.locator("#gantt-total rect.run title").text_content() or ""
        assert re.search(r"\d\d:\d\d:\d\d IST → \d\d:\d\d:\d\d IST", bar_title), bar_title

        # The browser's own zone: detected by Intl, sent with the form; remembered for the user.
        page.locator("#tz-menu summary").click()
        expect(page.locator("#tz-detected")).to_have_text("(America/New_York)")
        page.locator("#tz-mode-browser").check()
        page.locator("#tz-apply").click()
        expect(page.locator("#tz-current")).to_have_text(re.compile(r"^E[SD]T$"))
        offset = timezone.localtime(logical, timezone=ZoneInfo("America/New_York"))
        page.goto(grid_url(base, run))
        expect(page.locator("#run-details")).to_contain_text(f"{offset:%Y-%m-%d %H:%M:%S}")
        context.close()

        # The same user opens the dashboard from Tokyo: "the browser's zone" follows the browser.
        tokyo = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Asia/Tokyo")
        tokyo.set_default_timeout(15_000)
        page = tokyo.new_page()
        log_in(page, base, "tara")
        page.goto(grid_url(base, run))
        expect(page.locator("#tz-current")).to_have_text("JST")
        expect(page.locator("#run-details")).to_contain_text(f"{logical + timedelta(hours=9):%Y-%m-%d %H:%M:%S} JST")
        tokyo.close()


class DarkModeStoryTests:
    def test_a_user_reads_the_grid_in_dark_and_light_and_the_choice_sticks(self, live_server: Any, page: Page) -> None:
        run = finished_run()
        user("dora", "Operator")
        base = live_server.url
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.emulate_media(color_scheme="dark")
        log_in(page, base, "dora")
        page.goto(grid_url(base, run, task_id="add"))
        expect(page.locator("#theme-select")).to_have_value("system")
        assert luminance(background(page)) < 0.15, "the system's dark scheme is followed"
        # State colours keep their meaning: the success cell is the same green in both themes.
        green = page.locator(f"#cell-{run.pk}-add").evaluate("e => getComputedStyle(e).backgroundColor")
        assert green == "rgb(46, 157, 68)"
        page.locator(f"#cell-{run.pk}-add").hover()
        page.screenshot(path=str(SCREENSHOTS / "grid_dark.png"), full_page=True)

        page.locator("#theme-select").select_option("light")
        assert page.evaluate("document.documentElement.dataset.theme") == "light"
        assert luminance(background(page)) > 0.9, "the toggle wins over the system"
        assert page.locator(f"#cell-{run.pk}-add").evaluate("e => getComputedStyle(e).backgroundColor") == green
        page.screenshot(path=str(SCREENSHOTS / "grid_light.png"), full_page=True)

        # Remembered, and on <html> before the body is drawn (theme.js runs in <head>, not deferred).
        page.add_init_script("new MutationObserver((_, seen) => { if (document.body) { seen.disconnect();"
                             " window.__themeAtBody = document.documentElement.dataset.theme || 'none'; } })"
                             ".observe(document, {childList: true, subtree: true});")
        page.reload()
        assert page.evaluate("window.__themeAtBody") == "light", "set when the body starts, before anything is drawn"
        expect(page.locator("#theme-select")).to_have_value("light")
        page.locator("#theme-select").select_option("dark")
        page.emulate_media(color_scheme="light")
        page.goto(f"{base}{reverse('runs:graph', args=['example_add'])}?{urlencode({'run_id': run.run_id})}")
        assert luminance(background(page)) < 0.15, "dark chosen, on a light system"
        label = page.locator("#node-total text").first.evaluate("e => getComputedStyle(e).fill")
        assert luminance(label) > 0.8, f"graph labels are light on dark ({label})"
        page.screenshot(path=str(SCREENSHOTS / "graph_dark.png"), full_page=True)
        page.locator("#theme-select").select_option("system")
        assert page.evaluate("document.documentElement.dataset.theme") is None
        assert luminance(background(page)) > 0.9


class AccessibilityTests:
    def test_axe_finds_no_serious_violation_on_the_six_pages_in_both_schemes(self, live_server: Any, page: Page) -> None:
        run = finished_run()
        user("alex", "Operator")
        base = live_server.url
        log_in(page, base, "alex")
        found: dict[str, list[str]] = {}
        # The system's scheme (emulated), then the toggle against the system's.
        for scheme, theme in (("light", "system"), ("dark", "system"), ("light", "dark"), ("dark", "light")):
            page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
            page.evaluate(f"localStorage.setItem('dagsapp.theme', '{theme}')")
            for name, url in six_pages(base, run).items():
                page.goto(url)
                settled(page)
                if name == "log":
                    expect(page.locator("#log-lines")).to_contain_text("adding 2 + 10")
                violations = serious_violations(page)
                if violations:
                    found[f"{name} ({scheme} system, {theme} theme)"] = violations
        assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())

    def test_every_action_is_reachable_by_keyboard_with_focus_visible(self, live_server: Any, page: Page) -> None:
        run = finished_run()
        user("kim", "Operator")
        base = live_server.url
        log_in(page, base, "kim")
        page.goto(grid_url(base, run))

        def tab_to(selector: str, limit: int = 120) -> None:
            target = page.locator(selector)
            for _ in range(limit):
                page.keyboard.press("Tab")
                if target.evaluate("e => e === document.activeElement"):
                    return
            pytest.fail(f"Tab never reached {selector}")

        # A grid cell: Tab reaches it, its tooltip shows on focus, the outline is visible, Enter opens the panel.
        tab_to(f"#cell-{run.pk}-add")
        cell = page.locator(f"#cell-{run.pk}-add")
        expect(cell.locator(".tip")).to_be_visible()
        expect(cell.locator(".tip")).to_contain_text("3 success")
        outline = cell.evaluate("e => [getComputedStyle(e).outlineStyle, parseFloat(getComputedStyle(e).outlineWidth)]")
        assert outline[0] != "none" and outline[1] >= 2, outline
        page.keyboard.press("Enter")
        expect(page.locator("#task-panel")).to_be_visible()
        settled(page)
        # The mapped task's clear, by keyboard, opens its dialog; Escape closes it.
        tab_to("#clear-mapped")
        page.keyboard.press("Enter")
        expect(page.locator("dialog#action-dialog")).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator("dialog#action-dialog")).to_be_hidden()
        # An instance's clear and marks.
        page.goto(instance_url(base, run))
        for button in ("#clear-instance", "#mark-success", "#mark-failed"):
            tab_to(button)
            assert page.locator(button).evaluate("e => getComputedStyle(e).outlineStyle") != "none"
        page.keyboard.press("Enter")
        expect(page.locator("dialog#action-dialog h2")).to_contain_text("Mark")

        # Body text is at least 14 px.
        for selector in ("body", "#ti-details dd", "#ti-details dt"):
            size = page.locator(selector).first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            assert size >= 14, f"{selector}: {size}px"
        page.goto(f"{base}/")
        for selector in ("body", "table.dags td"):
            size = page.locator(selector).first.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
            assert size >= 14, f"{selector}: {size}px"

    def test_the_grid_tooltip_shows_the_counts_on_hover(self, live_server: Any, page: Page) -> None:
        run = finished_run()
        # Running again with one index failed (the grid counts live instances of a running run).
        DagRun.objects.filter(pk=run.pk).update(state="running", state_summary=None)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(state="failed")
        user("hana", "Viewer")
        base = live_server.url
        log_in(page, base, "hana")
        page.goto(grid_url(base, run))
        cell = page.locator(f"#cell-{run.pk}-add")
        expect(cell.locator(".tip")).to_be_hidden()
        cell.hover()
        tip = cell.locator(".tip")
        expect(tip).to_be_visible()
        expect(tip.locator(".tip-count")).to_have_text(["2 success", "1 failed"])
        expect(tip).to_contain_text(run.run_id)
        # Not clipped by the grid's scrolling box: the whole tooltip is on screen.
        box = tip.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 40
        assert cell.get_attribute("title") is None
