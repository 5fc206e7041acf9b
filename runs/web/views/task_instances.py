"""The details panel of a task in a run, one task instance's page, and its live log tail."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe
from django_htmx.http import HttpResponseStopPolling

from runs.logs import read_log
from runs.web.queries import instance_suggestions, xcom_json
from runs.web.views.common import (
    HtmxHttpRequest,
    get_dag_or_404,
    get_dag_run_or_404,
    get_task_instance_or_404,
    get_task_or_404,
    int_param,
    map_index_param,
)
from runs.web.views.graph import graph_page
from runs.web.views.grid import grid_page_context
from runs.web.views.logs import download_response, tail_response, viewer_response
from runs.web.views.panels import instance_context, panel_context


def _stop_polling_if(response: HttpResponse, finished: bool, request: HtmxHttpRequest, poller_id: str) -> HttpResponse:
    if finished and request.htmx.trigger == poller_id:
        response.status_code = HttpResponseStopPolling.status_code
    return response


@require_safe
@login_required
def task_panel(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    map_index = map_index_param(request)
    if not request.htmx:
        # The panel's own address is a full page too: the Grid (or the Graph it was opened from) with this panel open.
        dag = get_dag_or_404(dag_id)
        if request.GET.get("view") == "graph":
            return graph_page(request, dag, run, task_id=task_id, map_index=map_index)
        context = grid_page_context(request, dag, run_id=run_id, task_id=task_id, map_index=map_index)
        return render(request, "runs/grid.html", context)
    context = panel_context(request, run, task_id, map_index)
    template = "runs/_task_panel.html" if context["kind"] == "mapped" else "runs/_instance_panel.html"
    return _stop_polling_if(render(request, template, context), run.is_finished, request, "task-panel")


@require_safe
@login_required
def task_instance_suggestions(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """The picker's suggestions for what the user typed (htmx); a plain request gets them as JSON."""
    run = get_dag_run_or_404(dag_id, run_id)
    task = get_task_or_404(run, task_id)
    suggestions = instance_suggestions(run, task_id, request.GET.get("pick", ""), nested=len(task.get("levels", [])) > 1)
    if not request.htmx:
        return JsonResponse({"suggestions": [{"map_index": i, "name": name} for i, name in suggestions]})
    return render(request, "runs/_instance_suggestions.html", {"suggestions": suggestions})


@require_safe
@login_required
def task_instance(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    task = get_task_or_404(run, task_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    context = instance_context(request, run, task, ti)
    if not request.htmx:
        return render(request, "runs/task_instance.html", context)
    response = render(request, "runs/_instance_panel.html", context)
    return _stop_polling_if(response, not context["panel_live"], request, "instance-panel")


@require_safe
@login_required
def task_instance_xcom(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> HttpResponse:
    """One XCom's whole value as a JSON download (the page shows only the first characters of a large one)."""
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    key = request.GET.get("key", "return_value")
    text = xcom_json(ti, key)
    if text is None:
        raise Http404(f"No XCom {key!r} for this instance")
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{ti.task_id}-{ti.map_index}-xcom.json"'
    return response


@require_safe
@login_required
def task_instance_log(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> HttpResponse:
    """htmx: the viewer at a window or a search's match, or (with ``from``) the live tail's new lines;
    else the raw log as text, as an attachment with ``download``."""
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    try_number = int_param(request.GET.get("try"), default=max(ti.try_number, 1), minimum=1, maximum=max(ti.try_number, 1))
    text, _ = read_log(ti.pk, try_number)
    if request.GET.get("download"):
        return download_response(run, ti, try_number, text)
    if not request.htmx:
        return HttpResponse(text, content_type="text/plain; charset=utf-8")
    if "from" in request.GET:
        return tail_response(request, run, ti, try_number, text)
    return viewer_response(request, run, ti, try_number, text)
