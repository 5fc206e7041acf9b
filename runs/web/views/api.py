"""Read-only JSON API over the mapped instances, one instance and its logs (same login as the pages)."""
from __future__ import annotations

from django.http import Http404, HttpRequest, JsonResponse

from runs.logs import read_log
from runs.web.queries import (
    QueryError,
    instance_json,
    item_changes,
    mapped_instances_page,
    parse_order_by,
    parse_page,
    parse_state,
    tolerated_summary,
)
from runs.web.views.common import (
    api_login_required,
    api_require_safe,
    get_dag_run_or_404,
    get_task_instance_or_404,
    get_task_or_404,
)
from runs.web.views.errors import json_error


@api_require_safe
@api_login_required
def api_mapped_instances(request: HttpRequest, dag_id: str, run_id: str, task_id: str) -> JsonResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    try:
        state = parse_state(request.GET.get("state"))
        order_by = parse_order_by(request.GET.get("order_by"))
        page_number = parse_page(request.GET.get("page"))
    except QueryError as exc:
        return json_error(400, str(exc))
    task = run.serialized_dag.dag_data()["tasks"][task_id]
    nested = len(task.get("levels", [])) > 1
    raw_outer = request.GET.get("outer")
    if raw_outer is not None and (not nested or not raw_outer.isdigit() or len(raw_outer) > 9):
        return json_error(400, "outer must be an index (0, 1, 2, ...) of a task mapped inside a mapped task group")
    page = mapped_instances_page(run, task_id, state=state, q=request.GET.get("q", "")[:250], order_by=order_by, page=page_number,
                                 nested=nested, outer=int(raw_outer) if raw_outer is not None else None)
    tolerated = tolerated_summary(run, task_id)
    changes = item_changes(run, task_id)
    return JsonResponse({"total": page.total, "page": page.page, "pages": page.pages,
                         "instances": [instance_json(ti) for ti in page.instances],
                         # What the last re-expansion found, index by index; null before any.
                         "item_changes": {"unchanged": changes.unchanged, "new": changes.new, "changed": changes.changed,
                                          "removed": changes.removed} if changes.reexpanded else None,
                         # Set once every failure of the task (or its mapped group) is tolerated.
                         "tolerated": None if tolerated is None else {
                             "succeeded": tolerated.succeeded, "total": tolerated.total, "failed": tolerated.failed,
                             "summary": tolerated.describe()}})


@api_require_safe
@api_login_required
def api_mapped_instance(request: HttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int) -> JsonResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    return JsonResponse({**instance_json(ti), "task_id": ti.task_id, "max_tries": ti.max_tries, "hostname": ti.hostname,
                         "rendered_fields": ti.rendered_fields})


@api_require_safe
@api_login_required
def api_task_instance_log(request: HttpRequest, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> JsonResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    ti = get_task_instance_or_404(run, task_id, map_index)
    if not 1 <= try_number <= ti.try_number:
        raise Http404(f"No try {try_number} of {task_id}[{map_index}] (tries so far: {ti.try_number})")
    content, _ = read_log(ti.pk, try_number)
    return JsonResponse({"try_number": try_number, "content": content})
