"""The audit log, read-only: every DAG's (/audit/), one DAG's (its header's tab), one run's (from
the run panel, ``?run_id=``); filtered by event and user, paginated in SQL."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from runs.models import AuditEvent, AuditLog
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, int_param, is_operator

PAGE_SIZE = 50


@require_safe
@login_required
def audit_log(request: HtmxHttpRequest, dag_id: str | None = None) -> HttpResponse:
    dag = get_dag_or_404(dag_id) if dag_id is not None else None
    qs = AuditLog.objects.all()
    if dag is not None:
        qs = qs.filter(dag_id=dag.dag_id)
    run_id = request.GET.get("run_id", "")
    if run_id:
        qs = qs.filter(run_id=run_id)
    # Who appears in this DAG's (or run's) log: the user filter's choices, one query.
    owners = list(qs.order_by("owner").values_list("owner", flat=True).distinct()[:500])
    event = request.GET.get("event", "")
    if event in AuditEvent.values:
        qs = qs.filter(event=event)
    else:
        event = ""
    owner = request.GET.get("owner", "")
    if owner:
        qs = qs.filter(owner=owner)
    page = Paginator(qs, PAGE_SIZE).get_page(int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6))
    context = {
        "dag": dag, "data": dag.data if dag else None, "rows": page.object_list, "page": page, "events": AuditEvent.choices,
        "owners": owners, "filters": {"run_id": run_id, "event": event, "owner": owner}, "can_operate": is_operator(request.user),
    }
    return render(request, "runs/audit.html", context)
