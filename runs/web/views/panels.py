"""What the details panel shows: a mapped task's summary and table, or one task instance's tabs."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import Http404
from django.urls import reverse

from runs.logs import read_log
from runs.models import DagRun, TaskInstance, TaskInstanceState, XCom
from runs.models.taskinstance import UNFINISHED_STATES
from runs.web.queries import (
    ORDER_FIELDS,
    QueryError,
    instance_choices,
    mapped_instances_page,
    mapped_summary,
    neighbour_indexes,
    parse_order_by,
    parse_page,
    parse_state,
)
from runs.web.views.common import HtmxHttpRequest, is_operator

TABS = ("details", "rendered", "log", "xcom")
COLUMN_LABELS = {"map_index": "Index", "rendered_map_index": "Name", "state": "State", "try_number": "Try",
                 "start_date": "Start", "end_date": "End", "duration": "Duration"}
T = TypeVar("T")


def _or_default(parse: Callable[[str | None], T], raw: str | None, default: T) -> T:
    """Pages fall back to the default on a bad parameter (the API answers 400 instead)."""
    try:
        return parse(raw)
    except QueryError:
        return default


def panel_context(request: HtmxHttpRequest, run: DagRun, task_id: str, map_index: int | None) -> dict[str, Any]:
    task = run.serialized_dag.data["tasks"][task_id]
    if map_index is None and task["mapping"] is not None:
        return mapped_context(request, run, task)
    ti = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index=-1 if map_index is None else map_index).first()
    if ti is None:
        raise Http404(f"No instance {task_id}[{map_index}] in run {run.run_id!r}")
    ti.dag_run = run
    return instance_context(request, run, task, ti)


def mapped_context(request: HtmxHttpRequest, run: DagRun, task: dict[str, Any]) -> dict[str, Any]:
    task_id = task["task_id"]
    state = _or_default(parse_state, request.GET.get("state"), None)
    order_by = _or_default(parse_order_by, request.GET.get("order_by"), "map_index")
    page_number = _or_default(parse_page, request.GET.get("page"), 1)
    q = request.GET.get("q", "").strip()[:250]
    page = mapped_instances_page(run, task_id, state=state, q=q, order_by=order_by, page=page_number)
    panel_url = reverse("runs:task_panel", args=[run.dag_id, run.run_id, task_id])
    params = {"state": state or "", "q": q, "order_by": order_by if order_by != "map_index" else "", "page": page.page if page.page > 1 else ""}
    columns = []
    for name in ORDER_FIELDS:
        next_order = f"-{name}" if order_by == name else name
        arrow = "▲" if order_by == name else "▼" if order_by == f"-{name}" else ""
        columns.append({"name": name, "label": COLUMN_LABELS[name], "arrow": arrow,
                        "url": f"{panel_url}?{urlencode({**params, 'order_by': next_order, 'page': ''})}"})
    return {
        "kind": "mapped", "run": run, "task": task, "task_id": task_id, "dag_id": run.dag_id,
        "summary": mapped_summary(run, task_id), "choices": instance_choices(run, task_id), "page": page,
        "params": params, "columns": columns, "panel_url": panel_url, "states": TaskInstanceState.choices,
        "poll_url": f"{panel_url}?{urlencode({k: v for k, v in params.items() if v})}",
        "run_active": not run.is_finished, "can_operate": is_operator(request.user),
    }


def instance_context(request: HtmxHttpRequest, run: DagRun, task: dict[str, Any], ti: TaskInstance) -> dict[str, Any]:
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "details"
    last_try = max(ti.try_number, 1)
    try:
        try_number = min(max(int(request.GET.get("try", last_try)), 1), last_try)
    except ValueError:
        try_number = last_try
    url = reverse("runs:task_instance", args=[run.dag_id, run.run_id, ti.task_id, ti.map_index])
    # The poll keeps the tab and a try the user picked; without one, the log follows the latest try.
    shown = {"tab": tab if tab != "details" else "", "try": try_number if tab == "log" and "try" in request.GET else ""}
    context: dict[str, Any] = {
        "kind": "instance", "run": run, "task": task, "ti": ti, "task_id": ti.task_id, "dag_id": run.dag_id,
        "tab": tab, "tabs": TABS, "try_number": try_number, "tries": range(1, ti.try_number + 1),
        "ti_url": url, "is_mapped": task["mapping"] is not None,
        "ti_active": ti.state in UNFINISHED_STATES, "can_operate": is_operator(request.user),
        "panel_url": reverse("runs:task_panel", args=[run.dag_id, run.run_id, ti.task_id]),
        # Another instance (upstream, a clear from elsewhere) can still change this one while its run is active.
        "panel_live": ti.state in UNFINISHED_STATES or not run.is_finished,
        "shown_query": urlencode({k: v for k, v in shown.items() if v}),
        "grid_url": reverse("runs:grid", args=[run.dag_id]),
    }
    prev_index, next_index = neighbour_indexes(run, ti.task_id, ti.map_index)
    context["neighbours"] = ((prev_index, "prev"), (next_index, "next"))
    if tab == "log":
        context["log_text"], context["log_seq"] = read_log(ti.pk, try_number) if ti.try_number else ("", -1)
        context["log_live"] = context["ti_active"] and try_number == ti.try_number
        context["log_url"] = reverse("runs:task_instance_log", args=[run.dag_id, run.run_id, ti.task_id, ti.map_index])
    elif tab == "xcom":
        context["xcoms"] = list(XCom.objects.filter(dag_run=run, task_id=ti.task_id, map_index=ti.map_index).order_by("key").values("key", "value"))
    return context
