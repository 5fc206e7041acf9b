"""The mapped task panel, one instance's page with its tabs, and the live log tail."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from django.test import Client

from runs.models import DagRun, TaskInstance, TaskInstanceLog, XCom

XSS = "<script>alert(1)</script>"


def _panel(run: DagRun, task_id: str = "add") -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/{task_id}/"


def _ti(run: DagRun, task_id: str, map_index: int, suffix: str = "") -> str:
    return f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/{task_id}/mapped/{map_index}/{suffix}"


def _start_tag(body: str, marker: str) -> str:
    i = body.index(marker)
    return body[body.rindex("<", 0, i) : body.index(">", i) + 1]


def _rows(body: str) -> list[int]:
    import re

    return [int(m) for m in re.findall(r'<tr id="ti-add-(\d+)"', body)]


class MappedPanelTests:
    def test_it_returns_the_panel_fragment_to_htmx(self, operator_client: Client, run: DagRun) -> None:
        response = operator_client.get(_panel(run), HTTP_HX_REQUEST="true")
        body = response.content.decode()
        assert response.status_code == 200
        assert body.lstrip().startswith('<div id="task-panel"')
        assert "2 success" in body and "1 running" in body
        assert 'id="mapped-instance-pick"' in body and 'list="instance-suggestions"' in body
        assert 'id="progress"' in body
        assert "every 2s" in body

    def test_it_is_a_full_grid_page_without_htmx(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get(_panel(run)).content.decode()
        assert "<html" in body and 'id="grid-body"' in body and 'id="task-panel"' in body

    def test_it_stops_polling_when_the_run_is_finished(self, operator_client: Client, run: DagRun) -> None:
        DagRun.objects.filter(pk=run.pk).update(state="success")
        response = operator_client.get(_panel(run), HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="task-panel")
        assert response.status_code == 286
        assert "every 2s" not in response.content.decode()

    def test_it_sorts_filters_searches_and_paginates(self, operator_client: Client, make_run: Callable[..., DagRun],
                                                     expand_task: Callable[..., None]) -> None:
        run = make_run()
        expand_task(run, "add", 120, state="success", names=lambda i: f"item-{i:03d}")
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index__gte=100).update(state="none", start_date=None, end_date=None, duration=None)
        get = lambda **q: operator_client.get(_panel(run), q, HTTP_HX_REQUEST="true").content.decode()  # noqa: E731
        assert _rows(get()) == list(range(50))
        assert _rows(get(page="3")) == list(range(100, 120))
        assert _rows(get(page="99")) == list(range(100, 120))
        assert _rows(get(order_by="-map_index"))[:2] == [119, 118]
        assert _rows(get(order_by="-duration"))[:2] == [99, 98]
        assert _rows(get(order_by="duration", page="3"))[-1] == 119  # not started: last
        assert _rows(get(state="none")) == list(range(100, 120))
        assert _rows(get(q="item-01")) == list(range(10, 20))
        assert "page 1 of 3" in get()
        for bad in ({"order_by": "pk; drop"}, {"page": "x"}, {"state": "bogus"}, {"page": "-1"}):
            assert operator_client.get(_panel(run), bad, HTTP_HX_REQUEST="true").status_code == 200

    def test_it_searches_an_index_by_ascii_digits_only(self, operator_client: Client, run: DagRun) -> None:
        get = lambda q: operator_client.get(_panel(run), {"q": q}, HTTP_HX_REQUEST="true")  # noqa: E731
        assert _rows(get("1").content.decode()) == [0, 1]  # named x=1, and index 1
        # str.isdigit() is true of all of these; int() refuses '²' and reads '١' and '１' as 1.
        for q in ("²", "1²", "١", "１"):
            response = get(q)
            assert response.status_code == 200, q
            assert _rows(response.content.decode()) == [], q

    def test_it_shows_removed_instances_greyed(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=2).update(state="removed")
        body = operator_client.get(_panel(run), HTTP_HX_REQUEST="true").content.decode()
        assert '<tr id="ti-add-2" class="removed">' in body

    def test_it_is_404_for_unknown_run_or_task(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(f"/dags/{run.dag_id}/runs/nope/tasks/add/").status_code == 404
        assert operator_client.get(_panel(run, "nope")).status_code == 404

    def test_it_escapes_rendered_names(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(rendered_map_index=XSS)
        for url in (_panel(run), _ti(run, "add", 0), _ti(run, "add", 1)):
            for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
                body = operator_client.get(url, **headers).content.decode()
                assert "<script>alert" not in body, url


class TaskInstancePageTests:
    def test_it_shows_details_as_page_and_fragment(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(
            rendered_fields={"mapped_kwargs": {"x": 2}, "fields": {"op_kwargs": {"x": 2, "y": 10}}}, hostname="worker-1")
        page = operator_client.get(_ti(run, "add", 1)).content.decode()
        assert "<html" in page and "worker-1" in page and "&quot;x&quot;: 2" in page
        assert 'id="prev-instance"' in page and 'id="next-instance"' in page
        fragment = operator_client.get(_ti(run, "add", 1), HTTP_HX_REQUEST="true").content.decode()
        assert fragment.lstrip().startswith('<div id="instance-panel"')
        rendered = operator_client.get(_ti(run, "add", 1) + "?tab=rendered").content.decode()
        assert "&quot;y&quot;: 10" in rendered

    def test_it_shows_the_item_identity_and_how_the_last_reexpansion_found_it(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(item_identity="<B:3>", item_change="changed")
        fragment = operator_client.get(_ti(run, "add", 1), HTTP_HX_REQUEST="true").content.decode()
        assert '<dd id="item-identity"><code>&lt;B:3&gt;</code> <span class="muted">(changed at the last re-expansion)</span></dd>' in fragment
        assert 'id="item-identity"' not in operator_client.get(_ti(run, "add", 0), HTTP_HX_REQUEST="true").content.decode()

    def test_it_serves_unmapped_tasks_at_index_minus_one(self, operator_client: Client, run: DagRun) -> None:
        assert operator_client.get(_ti(run, "total", -1)).status_code == 200

    def test_it_is_404_for_bad_map_indexes(self, operator_client: Client, run: DagRun) -> None:
        for bad in ("-2", "abc", "99999999999999999999", "7"):
            assert operator_client.get(f"/dags/{run.dag_id}/runs/{run.run_id}/tasks/add/mapped/{bad}/").status_code == 404, bad

    def test_it_shows_the_log_per_try_escaped(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=0)
        TaskInstance.objects.filter(pk=ti.pk).update(try_number=2)
        TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="first try " + XSS)
        TaskInstanceLog.objects.create(task_instance=ti, try_number=2, text="second try\n")
        body = operator_client.get(_ti(run, "add", 0) + "?tab=log").content.decode()
        assert "second try" in body and "first try" not in body
        body = operator_client.get(_ti(run, "add", 0) + "?tab=log&try=1", HTTP_HX_REQUEST="true").content.decode()
        assert "first try &lt;script&gt;" in body and "<script>alert" not in body
        raw = operator_client.get(_ti(run, "add", 0, "log/") + "?try=1")
        assert raw["Content-Type"].startswith("text/plain")

    def test_it_tails_a_running_log_by_line_offset_and_stops_when_finished(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=2)
        TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="line one\nhalf a li")
        page = operator_client.get(_ti(run, "add", 2) + "?tab=log").content.decode()
        # A running try's half-written last line waits for its end; the poller asks for what follows line 1.
        assert 'id="log-poller"' in page and "every 1s" in page and "from=1" in page and "half a li" not in page
        TaskInstanceLog.objects.create(task_instance=ti, try_number=1, text="ne\nline three " + XSS + "\n")
        tail = operator_client.get(_ti(run, "add", 2, "log/"), {"try": 1, "start": 1, "from": 1}, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="log-poller")
        body = tail.content.decode()
        assert tail.status_code == 200
        assert 'id="L2"' in body and "half a line" in body and "line three &lt;script&gt;" in body and "line one" not in body
        assert "from=3" in body and "<script>alert" not in body
        TaskInstance.objects.filter(pk=ti.pk).update(state="success", end_date=None)
        done = operator_client.get(_ti(run, "add", 2, "log/"), {"try": 1, "start": 1, "from": 3}, HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="log-poller")
        assert done.status_code == 286
        assert "every 1s" not in done.content.decode()

    def test_it_shows_xcom_escaped(self, operator_client: Client, run: DagRun) -> None:
        XCom.objects.create(dag_run=run, task_id="add", map_index=0, key="return_value", value={"v": XSS})
        XCom.objects.create(dag_run=run, task_id="add", map_index=0, key="other", value=[1, 2])
        body = operator_client.get(_ti(run, "add", 0) + "?tab=xcom").content.decode()
        assert "return_value" in body and "other" in body
        assert "&lt;script&gt;" in body and "<script>alert" not in body

    def test_it_shows_the_start_of_a_large_xcom_with_a_download_link(self, operator_client: Client, run: DagRun,
                                                                     settings: Any) -> None:
        settings.MAX_DISPLAY_CHARS = 1000
        XCom.objects.create(dag_run=run, task_id="add", map_index=0, key="return_value", value=["x" * 500] * 40 + ["<end>"])
        body = operator_client.get(_ti(run, "add", 0) + "?tab=xcom").content.decode()
        assert "Download the whole value" in body
        assert "&lt;end&gt;" not in body and len(body) < 20_000
        download = operator_client.get(_ti(run, "add", 0, "xcom/"), {"key": "return_value"})
        assert download.status_code == 200 and download["Content-Disposition"].startswith("attachment")
        assert download.json()[-1] == "<end>"
        assert operator_client.get(_ti(run, "add", 0, "xcom/"), {"key": "nope"}).status_code == 404

    def test_it_refreshes_the_whole_panel_while_the_run_is_active(self, operator_client: Client, run: DagRun) -> None:
        # add[1] succeeded, then is cleared: the whole panel (details, actions) follows it, not only the summary.
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="none", try_number=1, hostname="old-host")
        poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "instance-panel"}
        r = operator_client.get(_ti(run, "add", 1), **poll)
        panel = _start_tag(r.content.decode(), 'id="instance-panel"')
        assert r.status_code == 200 and "every 2s" in panel and f'hx-get="{_ti(run, "add", 1)}"' in panel
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(state="success", try_number=2, hostname="worker-2")
        body = operator_client.get(_ti(run, "add", 1), **poll).content.decode()
        details = body[body.index('id="ti-details"'):]
        assert "success" in details and "worker-2" in details and "<dt>Try</dt><dd>2</dd>" in details
        assert "every 2s" in _start_tag(body, 'id="instance-panel"'), "the run is still active"
        DagRun.objects.filter(pk=run.pk).update(state="success")
        r = operator_client.get(_ti(run, "add", 1), **poll)
        assert r.status_code == 286 and "every 2s" not in r.content.decode()

    def test_it_keeps_polling_an_unfinished_instance_of_a_finished_run(self, operator_client: Client, run: DagRun) -> None:
        DagRun.objects.filter(pk=run.pk).update(state="failed")
        r = operator_client.get(_ti(run, "add", 2), HTTP_HX_REQUEST="true", HTTP_HX_TRIGGER="instance-panel")
        assert r.status_code == 200 and "every 2s" in r.content.decode()

    def test_its_log_tab_refresh_keeps_the_tab_a_picked_try_and_the_tailing_log(self, operator_client: Client, run: DagRun) -> None:
        ti = TaskInstance.objects.get(dag_run=run, task_id="add", map_index=2)
        TaskInstance.objects.filter(pk=ti.pk).update(try_number=2)
        body = operator_client.get(_ti(run, "add", 2) + "?tab=log", HTTP_HX_REQUEST="true").content.decode()
        assert f'hx-get="{_ti(run, "add", 2)}?tab=log&amp;shown_log={ti.pk}-2"' in _start_tag(body, 'id="instance-panel"')
        # The log box is left as it is by the panel's refresh (its own poller appends to it), per try.
        assert 'hx-preserve="true"' in _start_tag(body, f'id="log-{ti.pk}-2"')
        assert '<option value="2" selected>' in body
        # Its own poll does not read the log it would throw away; a new try is read and shown.
        TaskInstanceLog.objects.create(task_instance=ti, try_number=2, text="second try line\n")
        poll = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TRIGGER": "instance-panel"}
        body = operator_client.get(_ti(run, "add", 2), {"tab": "log", "shown_log": f"{ti.pk}-2"}, **poll).content.decode()
        assert f'id="log-{ti.pk}-2"' in body and "second try line" not in body and 'id="log-lines"' not in body
        body = operator_client.get(_ti(run, "add", 2), {"tab": "log", "shown_log": f"{ti.pk}-1"}, **poll).content.decode()
        assert "second try line" in body
        body = operator_client.get(_ti(run, "add", 2) + "?tab=log&try=1", HTTP_HX_REQUEST="true").content.decode()
        assert f'hx-get="{_ti(run, "add", 2)}?tab=log&amp;try=1&amp;shown_log={ti.pk}-1"' in _start_tag(body, 'id="instance-panel"')
        assert f'id="log-{ti.pk}-1"' in body and '<option value="1" selected>' in body
        # Actions (through their dialog) answer with the panel on the same tab.
        clear = html.unescape(_start_tag(body, 'id="clear-instance"'))
        assert "tab=log" in clear and "try=1" in clear
        dialog = operator_client.get(clear.split('href="')[1].split('"')[0], HTTP_HX_REQUEST="true").content.decode()
        assert f'hx-post="{_ti(run, "add", 2, "clear/")}?tab=log&amp;try=1"' in dialog

    def test_its_neighbour_links_open_in_place_with_an_href(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get(_ti(run, "add", 1), HTTP_HX_REQUEST="true").content.decode()
        prev = _start_tag(body, 'id="prev-instance"')
        assert f'href="{_ti(run, "add", 0)}"' in prev and f'hx-get="{_panel(run)}?map_index=0"' in prev and 'hx-target="#details"' in prev
        page = operator_client.get(_ti(run, "add", 1)).content.decode()
        assert 'class="single" id="details"' in page


class MappedInstancesPickerTests:
    def test_it_opens_the_typed_instance_on_submit_with_suggestions_as_the_user_types(self, operator_client: Client, run: DagRun) -> None:
        body = operator_client.get(_panel(run), HTTP_HX_REQUEST="true").content.decode()
        form = _start_tag(body, 'class="pick-instance"')
        assert f'hx-get="{_panel(run)}"' in form and 'action="/dags/view_add/grid/"' in form
        pick = _start_tag(body, 'id="mapped-instance-pick"')
        assert 'name="pick"' in pick and 'list="instance-suggestions"' in pick and "suggestions/" in pick
        assert '<button type="submit">Open</button>' in body and "<select" not in form


class DurationFilterTests:
    def test_it_shows_short_durations_in_milliseconds(self) -> None:
        from runs.templatetags.runs_tags import duration

        assert duration(0.042) == "42ms"
        assert duration(3.21) == "3.2s"
        assert duration(75) == "1m 15s"
        assert duration(None) == ""
