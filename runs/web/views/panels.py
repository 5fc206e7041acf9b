"""What the details panel shows: a mapped task's summary and table, or one task instance's tabs."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from dagsapp.serialization import TaskData
from runs.logs import read_log
from runs.models import DagModel, DagRun, TaskInstance, TaskInstanceState
from runs.models.taskinstance import UNFINISHED_STATES
from runs.web.deferrals import deferral_details
from runs.web.queries import (
    ORDER_FIELDS,
    QueryError,
    dag_version_number,
    expansion_outcome,
    instance_name,
    instance_xcoms,
    item_changes,
    keys_name_items,
    mapped_instances_page,
    mapped_summary,
    neighbour_indexes,
    outer_indexes,
    parse_order_by,
    parse_page,
    parse_state,
    resolve_pick,
    run_summary,
    tolerated_summary,
)
from runs.web.views.common import HtmxHttpRequest, get_task_instance_or_404, is_operator, reverse_with_query
from runs.web.views.logs import log_context

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


def page_name(request: HtmxHttpRequest) -> str:
    """The page a panel lives in, for the URLs it pushes: the Graph's when opened from it, else the Grid's."""
    return "runs:graph" if request.GET.get("view") == "graph" else "runs:grid"


def panel_context(request: HtmxHttpRequest, run: DagRun, task_id: str, map_index: int | None) -> dict[str, Any]:
    context = _panel_context(request, run, task_id, map_index)
    context["page_name"] = page_name(request)
    return context


def _panel_context(request: HtmxHttpRequest, run: DagRun, task_id: str, map_index: int | None) -> dict[str, Any]:
    task = run.serialized_dag.dag_data()["tasks"][task_id]
    pick = request.GET.get("pick", "").strip()
    if map_index is None and pick and task["mapping"] is not None:
        # Typed into the picker: the instance it names, or the table searched for it.
        map_index = resolve_pick(run, task_id, pick)
        if map_index is None:
            return mapped_context(request, run, task, q=pick)
    if map_index is None and task["mapping"] is not None:
        return mapped_context(request, run, task)
    ti = get_task_instance_or_404(run, task_id, -1 if map_index is None else map_index)
    return instance_context(request, run, task, ti)


def mapped_context(request: HtmxHttpRequest, run: DagRun, task: TaskData, *, q: str | None = None) -> dict[str, Any]:
    task_id = task["task_id"]
    state = _or_default(parse_state, request.GET.get("state"), None)
    order_by = _or_default(parse_order_by, request.GET.get("order_by"), "map_index")
    page_number = _or_default(parse_page, request.GET.get("page"), 1)
    q = (request.GET.get("q", "") if q is None else q).strip()[:250]
    nested = len(task.get("levels", [])) > 1
    outer = _outer_param(request.GET.get("outer")) if nested else None
    page = mapped_instances_page(run, task_id, state=state, q=q, order_by=order_by, page=page_number, nested=nested, outer=outer)
    keyed = keys_name_items(run, task)
    names = {ti.pk: instance_name(ti, keyed=keyed) for ti in page.instances}
    args = (run.dag_id, run.run_id, task_id)
    params = {"state": state or "", "q": q, "order_by": order_by if order_by != "map_index" else "", "page": page.page if page.page > 1 else ""}
    if outer is not None:
        params["outer"] = outer
    columns = []
    for name in ORDER_FIELDS:
        next_order = f"-{name}" if order_by == name else name
        arrow = "▲" if order_by == name else "▼" if order_by == f"-{name}" else ""
        columns.append({"name": name, "label": COLUMN_LABELS[name], "arrow": arrow,
                        "url": reverse_with_query("runs:task_panel", *args, query={**params, "order_by": next_order, "page": ""})})
    summary = mapped_summary(run, task_id)
    summary.tolerated = tolerated_summary(run, task_id)
    expansion = expansion_outcome(run, task_id, summary.placeholder_state)
    return {
        "expansion": expansion,
        "expansion_log_url": reverse_with_query("runs:task_instance", *args, -1, query={"tab": "log"}) if expansion else "",
        "kind": "mapped", "run": run, "task": task, "task_id": task_id, "dag_id": run.dag_id, "page_name": page_name(request),
        "summary": summary, "item_changes": item_changes(run, task_id), "suggest_url": reverse("runs:task_instance_suggestions", args=args), "page": page,
        "page_numbers": page.page_numbers(), "rows": [(ti, *names[ti.pk]) for ti in page.instances],
        "params": params, "columns": columns, "panel_url": reverse("runs:task_panel", args=args), "states": TaskInstanceState.choices,
        "poll_url": reverse_with_query("runs:task_panel", *args, query=params),
        "run_active": not run.is_finished, "can_operate": is_operator(request.user),
        "bulk_actions": [("clear", "Clear…", "warn"), ("success", "Mark success…", "ok"), ("failed", "Mark failed…", "danger")],
        # Nested mapping: the instances grouped by outer index, each with its own clear.
        "outer_indexes": outer_indexes(run, task_id) if nested else [], "outer": outer,
        "outer_level": task["levels"][0]["id"] if nested else "",
    }


@dataclass(frozen=True)
class RunAction:
    """An Operator's button on the run panel: it opens the dialog that names what the action touches."""

    label: str
    button_id: str
    css_class: str
    dialog_url: str


def run_context(request: HtmxHttpRequest, dag: DagModel, run: DagRun) -> dict[str, Any]:
    """The run panel: a run's details and its instances counted by state (frozen summary or one grouped query)."""
    args = (run.dag_id, run.run_id)
    end = run.end_date or (timezone.now() if run.start_date and not run.is_finished else None)
    can_operate = is_operator(request.user)

    def action(label: str, button_id: str, css: str, **query: str) -> RunAction:
        return RunAction(label, button_id, css, reverse_with_query("runs:run_action_dialog", *args, query=query))

    return {
        "kind": "run", "run": run, "dag_id": run.dag_id, "run_summary": run_summary(run),
        "run_duration": (end - run.start_date).total_seconds() if end and run.start_date else None,
        "version_number": dag_version_number(run), "version_is_latest": run.serialized_dag_id == dag.latest_serialized_id,
        "run_url": reverse("runs:run_panel", args=args), "run_active": not run.is_finished, "can_operate": can_operate,
        "run_actions": [
            action("Clear run…", "run-clear", "warn", action="clear"),
            action("Clear failed…", "run-clear-failed", "warn", action="clear", only_failed="on"),
            action("Mark success…", "run-mark-success", "ok", action="success"),
            action("Mark failed…", "run-mark-failed", "danger", action="failed"),
        ] if can_operate else [],
    }


def _outer_param(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() and len(raw) < 10 else None


@dataclass(frozen=True)
class InstanceAction:
    """One of the Operator's buttons on an instance: it opens the dialog that names what the action touches."""

    label: str
    button_id: str
    css_class: str
    dialog_url: str


def _instance_actions(ti: TaskInstance, run: DagRun, shown: dict[str, Any]) -> list[InstanceAction]:
    def action(label: str, button_id: str, css: str, name: str) -> InstanceAction:
        query = {"action": name, "map_index": ti.map_index, "instance": "1", **shown}
        return InstanceAction(label, button_id, css, reverse_with_query("runs:task_action_dialog", run.dag_id, run.run_id, ti.task_id, query=query))

    return [action("Clear…", "clear-instance", "warn", "clear"), action("Mark success…", "mark-success", "ok", TaskInstanceState.SUCCESS),
            action("Mark failed…", "mark-failed", "danger", TaskInstanceState.FAILED)]


def _try_param(request: HtmxHttpRequest, ti: TaskInstance) -> int:
    last_try = max(ti.try_number, 1)
    try:
        return min(max(int(request.GET.get("try", last_try)), 1), last_try)
    except ValueError:
        return last_try


def instance_context(request: HtmxHttpRequest, run: DagRun, task: TaskData, ti: TaskInstance) -> dict[str, Any]:
    tab = request.GET.get("tab") if request.GET.get("tab") in TABS else "details"
    try_number = _try_param(request, ti)
    args = (run.dag_id, run.run_id, ti.task_id, ti.map_index)
    # The poll and the actions keep the tab and a try the user picked; without one, the log follows the latest try.
    shown = {"tab": tab if tab != "details" else "", "try": try_number if tab == "log" and "try" in request.GET else ""}
    can_operate = is_operator(request.user)
    context: dict[str, Any] = {
        "kind": "instance", "run": run, "task": task, "ti": ti, "task_id": ti.task_id, "dag_id": run.dag_id, "page_name": page_name(request),
        "tab": tab, "tabs": [(t, reverse_with_query("runs:task_instance", *args, query={"tab": t})) for t in TABS],
        "try_number": try_number, "tries": range(1, ti.try_number + 1),
        "ti_url": reverse("runs:task_instance", args=args), "shown": shown, "is_mapped": task["mapping"] is not None,
        "ti_active": ti.state in UNFINISHED_STATES, "can_operate": can_operate,
        "actions": _instance_actions(ti, run, shown) if can_operate else [],
        "panel_url": reverse("runs:task_panel", args=args[:3]),
        # Another instance (upstream, a clear from elsewhere) can still change this one while its run is active.
        "panel_live": ti.state in UNFINISHED_STATES or not run.is_finished,
    }
    context["deferral"] = deferral_details(ti)
    prev_index, next_index = neighbour_indexes(run, ti.task_id, ti.map_index)
    context["neighbours"] = ((prev_index, "prev"), (next_index, "next"))
    if tab == "log":
        # The panel's own poll keeps the log box the page shows (hx-preserve): the log is read and
        # rendered again only when the try shown changed (a retry, when following the latest try).
        context["shown_log"] = f"{ti.pk}-{try_number}"
        if not (request.htmx and request.htmx.trigger == "instance-panel" and request.GET.get("shown_log") == context["shown_log"]):
            text, _ = read_log(ti.pk, try_number) if ti.try_number else ("", -1)
            context["log"] = log_context(request, run, ti, try_number, text)
    elif tab == "xcom":
        context["xcoms"] = instance_xcoms(ti, max_chars=settings.MAX_DISPLAY_CHARS)
    return context
