"""A DAG's code: the file's source as the DAG processor parsed it for one version, highlighted."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from runs.models import SerializedDag
from runs.web.docs import highlight_python
from runs.web.queries import find_dag_run
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, int_param, is_operator


@require_safe
@login_required
def dag_code(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    """``?run_id=`` shows the version that run was created with, ``?version=N`` version N, else the latest."""
    dag = get_dag_or_404(dag_id)
    # Numbered in the order they were parsed (as the run panel numbers them); the text of one only.
    versions = list(SerializedDag.objects.filter(dag_id=dag.dag_id).order_by("created_at", "pk").values_list("pk", "created_at"))
    run = find_dag_run(dag.dag_id, request.GET["run_id"]) if request.GET.get("run_id") else None
    numbers = {pk: n for n, (pk, _) in enumerate(versions, start=1)}
    if run is not None:
        pk = run.serialized_dag_id
    else:
        number = int_param(request.GET.get("version"), default=len(versions), minimum=1, maximum=len(versions))
        pk = versions[number - 1][0]
    version = SerializedDag.objects.get(pk=pk)
    context = {
        "dag": dag, "data": dag.data, "version": version, "version_number": numbers[pk], "versions": [(numbers[p], at) for p, at in versions],
        "latest_number": numbers[dag.latest_serialized_id] if dag.latest_serialized_id in numbers else len(versions),
        "run": run, "code_html": highlight_python(version.source_code) if version.source_code else "",
        "fileloc": version.dag_data().get("fileloc") or dag.fileloc, "can_operate": is_operator(request.user), "selected_run": run,
    }
    return render(request, "runs/code.html", context)
