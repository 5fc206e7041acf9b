"""The DAG list and triggering a run."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from runs.models import DagRunState
from runs.services import DagRunError, create_dag_run, parse_conf
from runs.templatetags.runs_tags import url_with
from runs.web.browse import all_tags, dags_page
from runs.web.deferrals import deferred_without_triggerer
from runs.web.queries import import_errors, last_runs_by_dag
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, int_param, operator_required, reverse_with_query
from runs.web.views.grid import grid_page_context
from runs.web.views.watch import watch_context

RUNS_PER_DAG = 10
# The last run's state a DAG can be filtered by; "none": never run.
LAST_RUN_STATES = [*DagRunState.values, "none"]


@require_safe
@login_required
def dag_list(request: HtmxHttpRequest) -> HttpResponse:
    """Active DAGs, searched by id (``q``), filtered by ``tag`` and last run ``state``, ``page`` by page: all in the URL."""
    q, tag, state = (request.GET.get(name, "").strip()[:250] for name in ("q", "tag", "state"))
    state = state if state in LAST_RUN_STATES else ""
    page = dags_page(q=q, tag=tag, last_state=state, page=int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6))
    runs = last_runs_by_dag([d.dag_id for d in page.rows], RUNS_PER_DAG)
    rows = [{"dag": d, "runs": runs.get(d.dag_id, []), "data": d.latest_serialized.dag_data() if d.latest_serialized else None}
            for d in page.rows]
    base = reverse("runs:dag_list")
    params = {"q": q, "tag": tag, "state": state}
    refresh_url = url_with(base, params, page=page.number if page.number > 1 else "")
    context = {
        "rows": rows, "page": page, "params": params, "filtered": any(params.values()), "tags": all_tags(), "list_url": base,
        "last_run_states": [(s, s.replace("_", " ")) for s in LAST_RUN_STATES],
        "refresh_url": refresh_url,
        "prev_url": url_with(base, params, page=page.number - 1) if page.number > 1 else "",
        "next_url": url_with(base, params, page=page.number + 1) if page.has_next else "",
        "import_errors": import_errors(), "deferred_without_triggerer": deferred_without_triggerer(),
    }
    if request.htmx:
        response = render(request, "runs/dag_list.html#dag-table", context)
        if request.htmx.trigger == "dag-filters":
            # The filter form's address without its empty fields, for the history and a shared link.
            response["HX-Push-Url"] = refresh_url
        return response
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
