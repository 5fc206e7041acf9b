"""The log viewer's context and its responses: a window of lines, search, the live tail, the download."""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from runs.models import DagRun, TaskInstance
from runs.models.taskinstance import UNFINISHED_STATES
from runs.templatetags.runs_tags import url_with
from runs.web.log_viewer import LEVEL_LOOKBACK, MAX_TAIL_LINES, LogLine, LogWindow, log_window, parse_lines, split_lines
from runs.web.views.common import HtmxHttpRequest, int_param

# The query keys that say which log the page shows and where: the viewer's address replaces them.
LOG_KEYS = frozenset({"tab", "try", "start", "q", "match"})
# A finished try's last chunk is flushed just after its state is written: keep tailing a moment.
LOG_SETTLE = timedelta(seconds=2)
MAX_LINE = 10**9


def lines_html(lines: list[LogLine], *, current: int | None = None) -> SafeString:
    """The lines as HTML, built here rather than by a template loop: a window has a thousand of them.
    Every piece of the log goes through ``escape`` (``LogLine.html`` is escaped text and <mark>s)."""
    out = []
    for line in lines:
        classes = "ll" + (f" lvl-{line.level}" if line.level else "") + (" current" if line.number == current else "")
        stamp = (format_html('<time class="ts" datetime="{}">{}</time>', line.stamp.isoformat(), line.local_stamp)
                 if line.stamp else '<span class="ts"></span>')
        out.append(f'<div class="{classes}" id="L{line.number}"><span class="ln">{line.number}</span>{stamp}'
                   f'<span class="msg">{line.html}</span></div>')
    return mark_safe("".join(out))


def is_live(ti: TaskInstance, try_number: int) -> bool:
    return ti.state in UNFINISHED_STATES and try_number == ti.try_number


def _urls(run: DagRun, ti: TaskInstance) -> tuple[str, str]:
    args = (run.dag_id, run.run_id, ti.task_id, ti.map_index)
    return reverse("runs:task_instance", args=args), reverse("runs:task_instance_log", args=args)


def log_context(request: HtmxHttpRequest, run: DagRun, ti: TaskInstance, try_number: int, text: str) -> dict[str, Any]:
    """What ``runs/_log_viewer.html`` shows, from the request's ``start``, ``q`` and ``match``."""
    live = is_live(ti, try_number)
    raw_start = request.GET.get("start")
    start = int_param(raw_start, default=1, minimum=1, maximum=MAX_LINE) if raw_start else None
    raw_match = request.GET.get("match")
    match = int_param(raw_match, default=0, minimum=0, maximum=MAX_LINE) if raw_match else None
    window = log_window(split_lines(text, complete_only=live), start=start, q=request.GET.get("q", ""), match=match)
    return viewer_context(run, ti, try_number, window, live=live)


def viewer_context(run: DagRun, ti: TaskInstance, try_number: int, window: LogWindow, *, live: bool) -> dict[str, Any]:
    ti_url, log_url = _urls(run, ti)
    base = {"tab": "log", "try": try_number}

    def link(**params: Any) -> dict[str, str]:
        """The same window as a whole page (href) and as the viewer alone (htmx)."""
        return {"href": url_with(ti_url, base, **params), "hx": url_with(log_url, {"try": try_number}, **params)}

    q = window.q
    nav = {
        "first": link(start=1, q=q) if window.start > 1 else None,
        "earlier": link(start=window.earlier_start, q=q) if window.earlier_start else None,
        "later": link(start=window.later_start, q=q) if window.later_start else None,
        "last": link(start=window.last_start, q=q) if not window.at_end else None,
        "prev": link(q=q, match=window.prev_match) if window.prev_match is not None else None,
        "next": link(q=q, match=window.next_match) if window.next_match is not None else None,
        "clear": link(start=window.start) if q else None,
    }
    return {
        "ti": ti, "run": run, "try_number": try_number, "w": window, "nav": nav, "ti_url": ti_url, "log_url": log_url,
        "lines_html": lines_html(window.lines, current=window.current_line),
        "download_url": url_with(log_url, {"try": try_number, "download": 1}),
        "raw_url": url_with(log_url, {"try": try_number}),
        "time_zone": timezone.get_current_timezone_name(),
        # The tail follows only a window that shows the end; a reader looking further up is not moved.
        "tail_url": url_with(log_url, {"try": try_number, "start": window.start, "from": window.total})
        if live and window.at_end else "",
    }


def window_params(window: LogWindow) -> dict[str, Any]:
    """Where the viewer is, as the query that brings it back: the search and its match (the window follows
    the match), or the window's first line and the words searched for."""
    if window.match is not None:
        return {"q": window.q, "match": window.match}
    return {"start": window.start, "q": window.q}


def page_url(request: HtmxHttpRequest, ti_url: str, try_number: int, window: LogWindow) -> str:
    """The page the viewer is in (the instance's page, or the Grid or Graph with its panel open) at this
    window, for the history: every one of them renders the log tab from the same query keys."""
    current = urlsplit(request.htmx.current_url or "")
    # Only a path on this site; anything else (no header, a scheme-relative path) is the instance's page.
    same_site = current.path.startswith("/") and not current.path.startswith("//")
    base = current.path if same_site else ti_url
    kept = {k: v for k, v in parse_qsl(current.query) if k not in LOG_KEYS} if same_site else {}
    return url_with(base, {**kept, "tab": "log", "try": try_number, **window_params(window)})


def viewer_response(request: HtmxHttpRequest, run: DagRun, ti: TaskInstance, try_number: int, text: str) -> HttpResponse:
    """The viewer moved to a window or a match (a link, the search): a new entry in the browser's history."""
    context = log_context(request, run, ti, try_number, text)
    response = render(request, "runs/_log_viewer.html", context)
    response["HX-Push-Url"] = page_url(request, context["ti_url"], try_number, context["w"])
    return response


def download_response(run: DagRun, ti: TaskInstance, try_number: int, text: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/plain; charset=utf-8")
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{run.dag_id}-{run.run_id}-{ti.task_id}-{ti.map_index}-try{try_number}")
    response["Content-Disposition"] = f'attachment; filename="{name}.log"'
    return response


def tail_response(request: HtmxHttpRequest, run: DagRun, ti: TaskInstance, try_number: int, text: str) -> HttpResponse:
    """The lines after ``from`` appended to the viewer, and the next poller; the whole viewer again at its
    end when the appended lines would pass ``MAX_TAIL_LINES`` (the page stays bounded)."""
    seen = int_param(request.GET.get("from"), default=0, minimum=0, maximum=MAX_LINE)
    start = int_param(request.GET.get("start"), default=1, minimum=1, maximum=MAX_LINE)
    state_finished = ti.state not in UNFINISHED_STATES or ti.try_number != try_number
    lines = split_lines(text, complete_only=not state_finished)
    new = lines[seen:]
    settled = ti.end_date is None or timezone.now() - ti.end_date > LOG_SETTLE
    finished = state_finished and not new and settled
    if len(lines) - start + 1 > MAX_TAIL_LINES:
        window = log_window(lines)
        response = render(request, "runs/_log_viewer.html", viewer_context(run, ti, try_number, window, live=not finished))
        response["HX-Retarget"] = "#log-viewer"
        response["HX-Reswap"] = "outerHTML"
        return response
    level = parse_lines(lines[max(0, seen - LEVEL_LOOKBACK):seen], 1)[-1].level if new and seen else ""
    context = {
        "new_html": lines_html(parse_lines(new, seen + 1, level=level)), "total": len(lines), "start": start,
        "end": len(lines),
        "tail_url": "" if finished else url_with(_urls(run, ti)[1], {"try": try_number, "start": start, "from": len(lines)}),
    }
    response = render(request, "runs/_log_viewer.html#log-tail", context)
    if finished and request.htmx.trigger == "log-poller":
        response.status_code = 286  # htmx: stop polling
    return response
