"""The runs and the task instances of every DAG, filtered by state, DAG and days, newest first."""
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import TextChoices
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from runs.models import DagRunState, TaskInstanceState
from runs.templatetags.runs_tags import url_with
from runs.web.browse import DateRange, Filters, Page, dag_ids, parse_day, runs_page, task_instances_page
from runs.web.views.common import HtmxHttpRequest, int_param


def _filters(request: HtmxHttpRequest, states: list[str]) -> Filters:
    state = request.GET.get("state", "")
    return Filters(state=state if state in states else "", dag_id=request.GET.get("dag_id", "").strip()[:250],
                   days=DateRange(parse_day(request.GET.get("from")), parse_day(request.GET.get("to"))))


def _context(request: HtmxHttpRequest, name: str, filters: Filters, page: Page[Any], states: list[tuple[str, str]]) -> dict[str, Any]:
    base = reverse(name)
    params = {"state": filters.state, "dag_id": filters.dag_id,
              "from": filters.days.start.isoformat() if filters.days.start else "",
              "to": filters.days.end.isoformat() if filters.days.end else ""}
    today = timezone.localdate()
    quick = [
        ("Failed today", url_with(base, {"state": "failed", "from": today.isoformat(), "to": today.isoformat()})),
        ("Failed in the last 7 days", url_with(base, {"state": "failed", "from": (today - timedelta(days=6)).isoformat()})),
        ("Running", url_with(base, {"state": "running"})),
    ]
    return {
        "page": page, "params": params, "states": states, "dag_ids": dag_ids(), "quick": quick, "list_url": base,
        "prev_url": url_with(base, params, page=page.number - 1) if page.number > 1 else "",
        "next_url": url_with(base, params, page=page.number + 1) if page.has_next else "",
        "filtered": any(params.values()), "time_zone": timezone.get_current_timezone_name(),
        "canonical_url": url_with(base, params, page=page.number if page.number > 1 else ""),
    }


def _list_page(request: HtmxHttpRequest, *, name: str, template: str, states: type[TextChoices],
               rows: Callable[[Filters, int], Page[Any]]) -> HttpResponse:
    """One list (``runs/_browse_list.html`` in ``template``): the rows the query's filters and page pick; to htmx,
    the results alone (the form, the pagers, the table)."""
    filters = _filters(request, list(states.values))
    page = rows(filters, int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6))
    context = _context(request, name, filters, page, states.choices)
    if not request.htmx:
        return render(request, template, context)
    response = render(request, f"{template}#results", context)
    if request.htmx.trigger == "browse-filters":
        # The filter form's address without its empty fields, for the history and a shared link.
        response["HX-Push-Url"] = context["canonical_url"]
    return response


@require_safe
@login_required
def run_list(request: HtmxHttpRequest) -> HttpResponse:
    return _list_page(request, name="runs:run_list", template="runs/run_list.html", states=DagRunState, rows=runs_page)


@require_safe
@login_required
def task_instance_list(request: HtmxHttpRequest) -> HttpResponse:
    return _list_page(request, name="runs:task_instance_list", template="runs/task_instance_list.html",
                      states=TaskInstanceState, rows=task_instances_page)
