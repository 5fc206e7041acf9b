"""Operator actions: clear, clear and re-expand, mark success/failed. POST only, each calls one service."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_htmx.http import trigger_client_event

from runs.models import DagRun, TaskInstanceState
from runs.services import (
    ClearPlan,
    DagRunError,
    PlannedTask,
    clear_mapped_task,
    clear_mapped_task_changed,
    clear_outer_index,
    clear_planned,
    clear_task_instances,
    mark_task_instances,
    plan_clear,
)
from runs.web.queries import parse_map_index, reload_dag_run
from runs.web.views.common import (
    HtmxHttpRequest,
    get_dag_run_or_404,
    get_task_instance_or_404,
    get_task_or_404,
    operator_required,
    reverse_with_query,
)
from runs.web.views.panels import instance_context, mapped_context

MARKABLE = (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED)
# Rows a selection may name: one table page, with room to spare.
MAX_SELECTION = 1000


def _after_instance_action(request: HtmxHttpRequest, run: DagRun, task_id: str, map_index: int) -> HttpResponse:
    """The instance panel again (htmx, and the grid told to refresh), or a redirect to the instance page."""
    if not request.htmx:
        return redirect("runs:task_instance", run.dag_id, run.run_id, task_id, map_index)
    reload_dag_run(run)
    ti = get_task_instance_or_404(run, task_id, map_index)
    response = render(request, "runs/_instance_panel.html", {**instance_context(request, run, get_task_or_404(run, task_id), ti), "show_messages": True})
    return trigger_client_event(response, "runs-changed")


def _after_task_action(request: HtmxHttpRequest, run: DagRun, task_id: str) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse_with_query("runs:grid", run.dag_id, query={"run_id": run.run_id, "task_id": task_id}))
    reload_dag_run(run)
    response = render(request, "runs/_task_panel.html", {**mapped_context(request, run, get_task_or_404(run, task_id)), "show_messages": True})
    return trigger_client_event(response, "runs-changed")


def clear_options(data: QueryDict) -> dict[str, bool]:
    """Airflow's clear options, from a dialog's query or form."""
    return {name: data.get(name) == "on" for name in ("downstream", "upstream", "only_failed")}


def _cleared_message(n: int, plan: ClearPlan) -> str:
    return f"Cleared {n}: {plan.describe()}." if n else "Nothing to clear: no instance matches."


def clear_with_options(run: DagRun, task_id: str, map_indexes: list[int] | None, data: QueryDict) -> str:
    """Clear as the dialog planned it; returns the message. A DAG with nested mapping clears by
    path prefix (runs.services.clear_task_instances / clear_mapped_task), with downstream only."""
    options = clear_options(data)
    if run.serialized_dag.dag_data().get("nested"):
        n = (clear_mapped_task(dag_run=run, task_id=task_id, downstream=options["downstream"]) if map_indexes is None else
             clear_task_instances(dag_run=run, task_id=task_id, map_indexes=map_indexes, downstream=options["downstream"]))
        return f"Cleared {n} task instance{'s' if n != 1 else ''}" + (" (with downstream)." if options["downstream"] else ".")
    plan = plan_clear(dag_run=run, task_id=task_id, map_indexes=map_indexes, **options)
    return _cleared_message(clear_planned(dag_run=run, plan=plan), plan)


@require_POST
@operator_required
def task_instance_clear(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    messages.success(request, clear_with_options(run, task_id, [ti.map_index], request.POST))
    return _after_instance_action(request, run, task_id, map_index)


@require_POST
@operator_required
def task_instance_mark(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    state = request.POST.get("state", "")
    if state not in MARKABLE:
        return HttpResponseBadRequest("state must be success or failed")
    n = mark_task_instances(dag_run=run, task_id=task_id, map_indexes=[ti.map_index], state=state)
    messages.success(request, f"Marked {task_id}[{map_index}] {state}." if n else f"{task_id}[{map_index}] was already {state}.")
    return _after_instance_action(request, run, task_id, map_index)


@require_POST
@operator_required
def task_clear_mapped(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """Clear a whole mapped task: it expands again from its current inputs (with Airflow's options)."""
    run = get_dag_run_or_404(dag_id, run_id)
    task = get_task_or_404(run, task_id)
    if task["mapping"] is None:
        return HttpResponseBadRequest(f"Task {task_id!r} is not a mapped task of DAG {dag_id!r}")
    try:
        messages.success(request, clear_with_options(run, task_id, None, request.POST))
    except DagRunError as exc:
        return HttpResponseBadRequest(str(exc))
    return _after_task_action(request, run, task_id)


@require_POST
@operator_required
def task_clear_outer(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """Nested mapping: clear everything of a task under one outer index (``fetch [2]``)."""
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    raw = request.POST.get("outer", "")
    if not raw.isdigit() or len(raw) > 9:
        return HttpResponseBadRequest("outer must be an index (0, 1, 2, ...)")
    try:
        n = clear_outer_index(dag_run=run, task_id=task_id, prefix=[int(raw)], downstream=request.POST.get("downstream") == "on")
    except DagRunError as exc:
        return HttpResponseBadRequest(str(exc))
    messages.success(request, f"Cleared {n} instance{'s' if n != 1 else ''} of {task_id} [{raw}].")
    return _after_task_action(request, run, task_id)


@require_POST
@operator_required
def task_clear_mapped_changed(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """Clear only new, changed and failed: re-expand, keeping the success of unchanged items."""
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    try:
        clear_mapped_task_changed(dag_run=run, task_id=task_id, downstream=request.POST.get("downstream") == "on")
    except DagRunError as exc:
        return HttpResponseBadRequest(str(exc))
    messages.success(request, f"{task_id} will be expanded again from its current inputs; "
                              "only its new, changed and failed items run again.")
    return _after_task_action(request, run, task_id)


@require_POST
@operator_required
def task_instances_action(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """Clear or mark the instances ticked in the mapped instances table."""
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    action = request.POST.get("action", "")
    raw = request.POST.getlist("map_index")
    parsed = [parse_map_index(v) for v in raw]
    if action not in ("clear", *MARKABLE) or len(raw) > MAX_SELECTION or None in parsed:
        return HttpResponseBadRequest("action must be clear, success or failed, with up to 1000 map indexes")
    indexes = sorted({i for i in parsed if i is not None})
    if not indexes:
        messages.warning(request, "Select instances in the table first.")
    elif action == "clear":
        messages.success(request, clear_with_options(run, task_id, indexes, request.POST))
    else:
        n = mark_task_instances(dag_run=run, task_id=task_id, map_indexes=indexes, state=action)
        messages.success(request, f"Marked {n} {action}: {PlannedTask(task_id, tuple(indexes)).describe()}." if n
                         else f"Nothing to mark: the selected instances were already {action}.")
    return _after_task_action(request, run, task_id)
