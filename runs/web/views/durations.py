"""A Gantt-style chart of one task's instances in a run: stragglers at a glance."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from runs.web import duration_chart
from runs.web.views.common import HtmxHttpRequest, get_dag_run_or_404, get_task_or_404

# Enough to see the shape of a run; past this the page would be slow to draw and to read.
MAX_BARS = 500
TICKS = 5


@require_safe
@login_required
def task_durations(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    run = get_dag_run_or_404(dag_id, run_id)
    task = get_task_or_404(run, task_id)
    stats = duration_chart.task_durations(dag_run=run, task_id=task_id, mapped=task["mapping"] is not None, limit=MAX_BARS)
    bars, axis = duration_chart.chart_bars(stats, now=timezone.now())
    context = {
        "run": run, "task": task, "stats": stats, "bars": bars, "axis": axis,
        "ticks": [(100 * i / (TICKS - 1), duration_chart.human_duration(axis * i / (TICKS - 1))) for i in range(TICKS)] if bars else [],
        "started": stats.total - stats.not_started, "capped": stats.total - stats.not_started > len(bars),
        "max_bars": MAX_BARS, "stragglers": sum(b.straggler for b in bars),
        "median_text": duration_chart.human_duration(stats.median) if stats.median is not None else None,
    }
    template = "runs/durations.html#chart" if request.htmx else "runs/durations.html"
    return render(request, template, context)
