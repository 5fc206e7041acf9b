"""The Gantt chart of a run (Airflow's Gantt view): a bar per task, a mapped task opening into its instances."""
from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from runs.web import gantt
from runs.web.duration_chart import human_duration
from runs.web.queries import STATE_BAR_ORDER, aggregate_state
from runs.web.views.common import HtmxHttpRequest, get_dag_run_or_404, int_param, reverse_with_query

LABEL_WIDTH, CHART_WIDTH, ROW_HEIGHT, AXIS_HEIGHT, TICKS = 260, 860, 22, 24, 6


@require_safe
@login_required
def run_gantt(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    data = run.serialized_dag.dag_data()
    expand = request.GET.get("expand")
    expand = expand if expand in data["tasks"] and data["tasks"][expand]["mapping"] is not None else None
    page = int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6)
    timings = gantt.task_timings(run, aggregate=aggregate_state)
    rows: list[tuple[gantt.Timing, int, str, bool]] = []
    pages = 1
    for task_id in data["task_order"]:
        mapped = data["tasks"][task_id]["mapping"] is not None
        t = timings.get(task_id) or gantt.Timing(task_id, None, task_id, "none", 0, None, None, None)
        label = f"{task_id} [{t.count:,}]" if mapped and t.start is not None else task_id
        opened = task_id == expand
        href = reverse_with_query("runs:run_gantt", dag_id, run_id, query={"expand": "" if opened else task_id}) if mapped else \
            reverse_with_query("runs:grid", dag_id, query={"run_id": run_id, "task_id": task_id})
        rows.append((gantt.Timing(task_id, None, label, t.state, t.count, t.queued, t.start, t.end, t.running), 0, href, opened))
        if opened:
            pages = max(1, math.ceil(t.count / gantt.INSTANCES_PER_PAGE))
            page = min(page, pages)
            rows += [(i, 1, reverse_with_query("runs:grid", dag_id, query={"run_id": run_id, "task_id": task_id, "map_index": i.map_index}), False)
                     for i in gantt.instance_timings(run, task_id, page=min(page, pages))]
    bars, axis, origin = gantt.place(rows, now=timezone.now(), left=LABEL_WIDTH, width=CHART_WIDTH, row_height=ROW_HEIGHT)
    context: dict[str, Any] = {
        "run": run, "dag_id": dag_id, "bars": bars, "origin": origin, "expand": expand, "page": page, "pages": pages,
        "width": LABEL_WIDTH + CHART_WIDTH + 10, "height": AXIS_HEIGHT + ROW_HEIGHT * len(bars) + 4, "axis_height": AXIS_HEIGHT,
        "label_width": LABEL_WIDTH, "legend": STATE_BAR_ORDER,
        "ticks": [(LABEL_WIDTH + CHART_WIDTH * k / (TICKS - 1), human_duration(axis * k / (TICKS - 1))) for k in range(TICKS)] if origin else [],
    }
    if expand and pages > 1:
        def page_url(n: int) -> str:
            return reverse_with_query("runs:run_gantt", dag_id, run_id, query={"expand": expand, "page": n})
        context.update(prev_url=page_url(page - 1) if page > 1 else "", next_url=page_url(page + 1) if page < pages else "")
    return render(request, "runs/gantt.html", context)
