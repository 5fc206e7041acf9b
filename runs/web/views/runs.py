"""One run: its panel (details, counts, the Operator's run actions), its conf on demand."""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import trigger_client_event

from runs.models import DagRun, DagRunState, TaskInstanceState
from runs.models.taskinstance import UNFINISHED_STATES
from runs.services import FAILED_STATES, clear_dag_run, mark_dag_run
from runs.web.queries import reload_dag_run, run_summary
from runs.web.views.common import (
    HtmxHttpRequest,
    get_dag_or_404,
    get_dag_run_or_404,
    operator_required,
    reverse_with_query,
)
from runs.web.views.dialogs import ActionDialog, DialogOption, listed, render_dialog
from runs.web.views.grid import grid_page_context
from runs.web.views.panels import run_context

S = TaskInstanceState
RUN_ACTIONS = ("clear", DagRunState.SUCCESS, DagRunState.FAILED)


@require_safe
@login_required
def run_panel(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    """htmx: the run's panel (a run bar's click, its own poll); else the Grid with the run's panel open."""
    dag = get_dag_or_404(dag_id)
    run = get_dag_run_or_404(dag_id, run_id)
    if not request.htmx:
        return render(request, "runs/grid.html", grid_page_context(request, dag, run_id=run_id, task_id=None, map_index=None))
    response = render(request, "runs/_run_panel.html", run_context(request, dag, run))
    if run.is_finished and request.htmx.trigger == "run-panel":
        response.status_code = 286  # htmx: stop polling
    return response


def _touched(run: DagRun, action: str, only_failed: bool) -> tuple[int, list[str]]:
    """How many instances the action changes, and one line per task it touches."""
    summary = run_summary(run)
    order = run.serialized_dag.dag_data()["task_order"]
    if action == "clear":
        states: set[str] | None = set(FAILED_STATES) if only_failed else None
    elif action == DagRunState.SUCCESS:
        states = set(S.values) - {S.SUCCESS, S.SKIPPED, S.REMOVED}
    else:
        states = set(UNFINISHED_STATES)
    total, lines = 0, []
    for task_id in order:
        counts = {s: n for s, n in summary.by_task.get(task_id, {}).items() if s != S.REMOVED and (states is None or s in states)}
        if counts:
            total += sum(counts.values())
            lines.append(f"{task_id}: " + ", ".join(f"{n} {s.replace('_', ' ') if s != S.NONE else 'no status'}" for s, n in counts.items()))
    return total, lines


@require_safe
@operator_required
def run_action_dialog(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    """What clearing or marking the run will touch, with Airflow's option (only failed), before it is done."""
    run = get_dag_run_or_404(dag_id, run_id)
    action = request.GET.get("action", "clear")
    if action not in RUN_ACTIONS:
        return HttpResponseBadRequest("action must be clear, success or failed")
    only_failed = request.GET.get("only_failed") == "on"
    total, lines = _touched(run, action, only_failed)
    shown, more = listed(lines)
    instances = f"{total} task instance{'s' if total != 1 else ''}"
    options: list[DialogOption] = []
    hidden: list[tuple[str, str | int]] = []
    if action == "clear":
        title, button, css, url = f"Clear run {run.run_id}", "Clear", "warn", "runs:run_clear"
        summary = f"{instances} will be cleared and run again" + (
            " (only failed and upstream failed)." if only_failed else "; mapped tasks expand again from their inputs.")
        options = [DialogOption("only_failed", "Only failed and upstream failed", only_failed)]
    else:
        title, button, url = f"Mark run {run.run_id} {action}", f"Mark {action}", "runs:run_mark"
        css = "ok" if action == DagRunState.SUCCESS else "danger"
        summary = (f"{instances} will be marked success" if action == DagRunState.SUCCESS else
                   f"{instances} are unfinished: the running ones will be marked failed, the others skipped") + f"; the run ends {action}."
        hidden = [("state", action)]
    return render_dialog(request, ActionDialog(
        title=title, summary=summary, lines=shown, more=more, post_url=reverse(url, args=(dag_id, run_id)),
        dialog_url=reverse_with_query("runs:run_action_dialog", dag_id, run_id, query={"action": action}), target="run-panel",
        button=button, button_class=css, back_url=reverse_with_query("runs:grid", dag_id, query={"run_id": run_id}),
        options=options, hidden=hidden, nothing=action == "clear" and total == 0))


def _after_run_action(request: HtmxHttpRequest, run: DagRun) -> HttpResponse:
    if not request.htmx:
        return redirect(reverse_with_query("runs:grid", run.dag_id, query={"run_id": run.run_id}))
    reload_dag_run(run)
    context = {**run_context(request, get_dag_or_404(run.dag_id), run), "show_messages": True, "close_dialog": True}
    return trigger_client_event(render(request, "runs/_run_panel.html", context), "runs-changed")


@require_POST
@operator_required
def run_clear(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    only_failed = request.POST.get("only_failed") == "on"
    n = clear_dag_run(dag_run=run, only="failed" if only_failed else "all")
    what = "failed and upstream-failed " if only_failed else ""
    messages.success(request, f"Cleared {n} {what}task instance{'s' if n != 1 else ''} of run {run.run_id}." if n
                     else f"Nothing to clear in run {run.run_id}.")
    return _after_run_action(request, run)


@require_POST
@operator_required
def run_mark(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    state = request.POST.get("state", "")
    if state not in (DagRunState.SUCCESS, DagRunState.FAILED):
        return HttpResponseBadRequest("state must be success or failed")
    n = mark_dag_run(dag_run=run, state=state)
    messages.success(request, f"Marked run {run.run_id} {state}" + (f" ({n} task instance{'s' if n != 1 else ''} changed)." if n else "."))
    return _after_run_action(request, run)


@require_safe
@login_required
def run_conf(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    """htmx: the conf pretty-printed (its first characters when large); else the whole conf as JSON."""
    run = get_dag_run_or_404(dag_id, run_id)
    if not request.htmx:
        response = HttpResponse(json.dumps(run.conf, ensure_ascii=False), content_type="application/json")
        response["Content-Disposition"] = f'inline; filename="{dag_id}-conf.json"'
        return response
    text = json.dumps(run.conf, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    limit = settings.MAX_DISPLAY_CHARS
    context = {"run": run, "text": text[:limit], "size": len(text), "truncated": len(text) > limit, "limit": limit}
    return render(request, "runs/_conf.html#conf-pretty", context)
