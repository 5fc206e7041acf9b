"""The Graph view: the DAG drawn by Graphviz, coloured by the state of its tasks in one run."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_safe
from django_htmx.http import HttpResponseStopPolling

from dagsapp.serialization import DagData
from runs.models import DagModel, DagRun, SerializedDag, TaskInstanceState
from runs.web import graph_svg
from runs.web.queries import latest_run, run_choices
from runs.web.views.common import (
    HtmxHttpRequest,
    get_dag_or_404,
    get_dag_run_or_404,
    is_operator,
    map_index_param,
    reverse_with_query,
)

RUN_CHOICES = 25


@require_safe
@login_required
def dag_graph(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    dag = get_dag_or_404(dag_id)
    run_id = request.GET.get("run_id")
    run = get_dag_run_or_404(dag_id, run_id) if run_id else latest_run(dag_id)
    collapsed = _collapsed_param(request)
    if request.htmx and request.htmx.target == "graph-body":
        context = _graph_context(dag, run, task_id=request.GET.get("task_id"), collapsed=collapsed)
        response = render(request, "runs/graph.html#graph-body", context)
        if run is None or run.is_finished:
            return HttpResponseStopPolling(response.content)
        return response
    return graph_page(request, dag, run, task_id=request.GET.get("task_id"), map_index=map_index_param(request), collapsed=collapsed)


def _collapsed_param(request: HtmxHttpRequest) -> frozenset[str]:
    """``?collapsed=group1,group2``: the task groups drawn as one node (unknown ids are ignored)."""
    raw = request.GET.get("collapsed", "")[:5000]
    return frozenset(g for g in raw.split(",") if g)


def graph_page(request: HtmxHttpRequest, dag: DagModel, run: DagRun | None, *, task_id: str | None, map_index: int | None,
               collapsed: frozenset[str] = frozenset()) -> HttpResponse:
    """The Graph page, with a task's (or an instance's) panel when the URL names one: a panel
    opened from the Graph keeps a Graph URL, so a reload or a shared link stays on the Graph."""
    context = _graph_context(dag, run, task_id=task_id, collapsed=collapsed)
    context["runs"] = run_choices(dag.dag_id, RUN_CHOICES)
    context["can_operate"] = is_operator(request.user)
    context["data"] = dag.data
    if run is not None and context["task_id"]:
        context["panel_src"] = reverse_with_query("runs:task_panel", dag.dag_id, run.run_id, context["task_id"],
                                                  query={"map_index": map_index, "view": "graph"})
    return render(request, "runs/graph.html", context)


def _graph_context(dag: DagModel, run: DagRun | None, *, task_id: str | None, collapsed: frozenset[str] = frozenset()) -> dict[str, Any]:
    # A run is drawn with the version of the DAG it was created with.
    version: SerializedDag = run.serialized_dag if run is not None else dag.latest_serialized  # type: ignore[assignment]
    data = version.dag_data()
    collapsed = frozenset(g for g in collapsed if g in data["task_groups"])
    base = {"run_id": run.run_id if run is not None else None}
    # Every link of the page keeps the collapsed groups; each group's link toggles it alone.
    toggle_urls = {g: reverse_with_query("runs:graph", dag.dag_id, query={**base, "collapsed": ",".join(sorted(collapsed ^ {g}))})
                   for g in data["task_groups"]}
    context: dict[str, Any] = {
        "dag": dag, "run": run, "version_is_latest": version.pk == dag.latest_serialized_id,
        # The task whose panel the URL asks for (a shared or reloaded link), if it is one of the DAG's.
        "task_id": task_id if run is not None and task_id in version.dag_data()["tasks"] else None,
        "states": list(TaskInstanceState),
        "collapsed": ",".join(sorted(collapsed)), "has_groups": bool(data["task_groups"]),
        "collapse_all_url": reverse_with_query("runs:graph", dag.dag_id, query={**base, "collapsed": ",".join(sorted(data["task_groups"]))}),
        "expand_all_url": reverse_with_query("runs:graph", dag.dag_id, query=base),
    }
    try:
        template = graph_svg.layout_template(dag_hash=version.dag_hash, data=data, collapsed=collapsed)
    except graph_svg.GraphvizMissing:
        context["svg"] = None
    else:
        context["svg"] = mark_safe(_fill(template, data, dag.dag_id, run, collapsed=collapsed, toggle_urls=toggle_urls))
    return context


def _fill(template: str, data: DagData, dag_id: str, run: DagRun | None, *, collapsed: frozenset[str],
          toggle_urls: dict[str, str]) -> str:
    order = data["task_order"]
    panel_urls: dict[str, str] = {}
    push_urls: dict[str, str] = {}
    if run is not None:
        keep = {"collapsed": ",".join(sorted(collapsed))} if collapsed else {}
        for task_id in order:
            panel_urls[task_id] = reverse_with_query("runs:task_panel", dag_id, run.run_id, task_id, query={"view": "graph"})
            push_urls[task_id] = reverse_with_query("runs:graph", dag_id, query={"run_id": run.run_id, "task_id": task_id, **keep})
    return graph_svg.render_graph(template, order=order, cells=graph_svg.run_cells(run), panel_urls=panel_urls,
                                  push_urls=push_urls, data=data, toggle_urls=toggle_urls)
