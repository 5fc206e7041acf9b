"""The DAG list and triggering a run."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from runs.services import DagRunError, create_dag_run, parse_conf
from runs.web.deferrals import deferred_without_triggerer
from runs.web.queries import active_dags, import_errors, last_runs_by_dag
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, operator_required, reverse_with_query
from runs.web.views.grid import grid_page_context
from runs.web.views.watch import watch_context

RUNS_PER_DAG = 10


@require_safe
@login_required
def dag_list(request: HtmxHttpRequest) -> HttpResponse:
    dags = active_dags()
    runs = last_runs_by_dag([d.dag_id for d in dags], RUNS_PER_DAG)
    rows = [{"dag": d, "runs": runs.get(d.dag_id, []), "data": d.latest_serialized.dag_data() if d.latest_serialized else None} for d in dags]
    context = {"rows": rows, "import_errors": import_errors(), "deferred_without_triggerer": deferred_without_triggerer()}
    if request.htmx:
        return render(request, "runs/dag_list.html#dag-table", context)
    return render(request, "runs/dag_list.html", {**context, **watch_context(None)})


@require_POST
@operator_required
def dag_trigger(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    dag = get_dag_or_404(dag_id)
    raw = request.POST.get("conf", "")
    try:
        run = create_dag_run(dag_id=dag.dag_id, conf=parse_conf(raw))
    except DagRunError as exc:
        if request.htmx:
            return render(request, "runs/_dag_header.html#trigger-form", {"dag": dag, "conf": raw, "trigger_error": str(exc), "trigger_open": True})
        context = grid_page_context(request, dag, run_id=None, task_id=None, map_index=None)
        context.update(conf=raw, trigger_error=str(exc), trigger_open=True)
        return render(request, "runs/grid.html", context, status=400)
    messages.success(request, f"Triggered run {run.run_id}.")
    url = reverse_with_query("runs:grid", dag.dag_id, query={"run_id": run.run_id})
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)
