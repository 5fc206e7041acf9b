"""The Grid: DagRuns as columns, tasks (in task groups) as rows, cells aggregated in SQL."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe
from django_htmx.http import HttpResponseStopPolling

from dagsapp.serialization import ChildRef, DagData
from runs.models import DagModel, DagRun, DagRunState, DagRunType
from runs.tolerance import UnitCounts
from runs.web.queries import STATE_BAR_ORDER, TOLERATED, Cell, find_dag_run, grid_cells, latest_runs, tolerated_cells
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, int_param, is_operator, map_index_param, reverse_with_query
from runs.web.views.panels import panel_context, run_context
from runs.web.views.watch import watch_context

DEFAULT_NUM_RUNS = 25
MAX_NUM_RUNS = 365


@dataclass
class GridCell:
    run: DagRun
    cell: Cell
    href: str = ""
    selected: bool = False


@dataclass
class GridNode:
    kind: Literal["task", "group"]
    id: str
    label: str
    first: int
    depth: int = 0
    is_mapped: bool = False
    children: list[GridNode] = field(default_factory=list)
    cells: list[GridCell] = field(default_factory=list)
    mapped_label: str = ""
    # The Grid with this task selected in the selected run (the label's link).
    href: str = ""


def build_tree(data: DagData) -> list[GridNode]:
    """Tasks in DAG order, each task group kept together and placed at its first task."""
    order = {t: i for i, t in enumerate(data["task_order"])}

    def nodes(children: list[ChildRef], depth: int = 0) -> list[GridNode]:
        out = []
        for child in children:
            if child["type"] == "task" and child["id"] in data["tasks"]:
                task = data["tasks"][child["id"]]
                out.append(GridNode("task", child["id"], task["label"], order[child["id"]], depth, is_mapped=task["mapping"] is not None))
            elif child["type"] == "group" and child["id"] in data["task_groups"]:
                group = data["task_groups"][child["id"]]
                inner = nodes(group["children"], depth + 1)
                if inner:
                    out.append(GridNode("group", child["id"], group["label"], min(n.first for n in inner), depth,
                                        is_mapped=group["is_mapped"], children=inner))
        return sorted(out, key=lambda n: n.first)

    return nodes(data["root_children"])


def select_url(dag_id: str, run_id: str, task_id: str | None, keep: Mapping[str, object]) -> str:
    """The Grid with a run (and a task) selected: a cell's, a label's or a run bar's link; ``keep``
    is the grid's own view (how many runs, the filters)."""
    return reverse_with_query("runs:grid", dag_id, query={"run_id": run_id, "task_id": task_id, **keep})


@dataclass(frozen=True)
class GridView:
    """How many runs the Grid shows, of which run state and type (the filters above it)."""

    num_runs: int = DEFAULT_NUM_RUNS
    run_state: str = ""
    run_type: str = ""

    @classmethod
    def from_request(cls, request: HtmxHttpRequest) -> GridView:
        state, run_type = request.GET.get("run_state", ""), request.GET.get("run_type", "")
        return cls(num_runs=int_param(request.GET.get("num_runs"), default=DEFAULT_NUM_RUNS, minimum=1, maximum=MAX_NUM_RUNS),
                   run_state=state if state in DagRunState.values else "", run_type=run_type if run_type in DagRunType.values else "")

    @property
    def keep(self) -> dict[str, object]:
        return {"num_runs": self.num_runs if self.num_runs != DEFAULT_NUM_RUNS else None,
                "run_state": self.run_state, "run_type": self.run_type}


# A run's bar is as tall as its duration, relative to the longest shown (Airflow's grid).
BAR_MIN_PX, BAR_MAX_PX = 6, 36
DATE_LABELS = 10


def run_columns(dag_id: str, runs: list[DagRun], keep: Mapping[str, object], now: datetime) -> list[dict[str, Any]]:
    """Each run's bar: its link, its height from its duration, and a date under every few bars."""
    durations = [((r.end_date or now) - r.start_date).total_seconds() if r.start_date else 0.0 for r in runs]
    longest = max(durations, default=0.0) or 1.0
    step = max(1, math.ceil(len(runs) / DATE_LABELS))
    return [{"run": r, "url": select_url(dag_id, r.run_id, None, keep), "duration": d,
             "height": BAR_MIN_PX + round((BAR_MAX_PX - BAR_MIN_PX) * d / longest),
             "date": r.logical_date if i % step == 0 or i == len(runs) - 1 else None}
            for i, (r, d) in enumerate(zip(runs, durations, strict=True))]


def _fill(nodes: list[GridNode], runs: list[DagRun], cells: dict[tuple[int, str], Cell], dag_id: str,
          selected_run: DagRun | None, selected_task: str | None, keep: Mapping[str, object]) -> None:
    for node in nodes:
        if node.kind == "group":
            _fill(node.children, runs, cells, dag_id, selected_run, selected_task, keep)
            for i, run in enumerate(runs):
                total = Cell()
                for leaf in _leaves(node):
                    total.add(leaf.cells[i].cell)
                node.cells.append(GridCell(run, total))
            continue
        for run in runs:
            node.cells.append(GridCell(
                run, cells.get((run.pk, node.id), Cell()), href=select_url(dag_id, run.run_id, node.id, keep),
                selected=selected_run is not None and run.pk == selected_run.pk and node.id == selected_task))
        if selected_run is not None:
            node.href = select_url(dag_id, selected_run.run_id, node.id, keep)
        if node.is_mapped and selected_run is not None:
            n = cells.get((selected_run.pk, node.id), Cell()).mapped_count
            node.mapped_label = "[ ]" if n is None else f"[{n}]"


def _mark_tolerated(nodes: list[GridNode], tolerated: dict[tuple[int, str], UnitCounts]) -> None:
    """Cells whose failures are all tolerated read as success with a marker."""
    for node in nodes:
        _mark_tolerated(node.children, tolerated)
        for gc in node.cells:
            gc.cell.tolerated = tolerated.get((gc.run.pk, node.id))


def _leaves(node: GridNode) -> list[GridNode]:
    return [leaf for c in node.children for leaf in (_leaves(c) if c.kind == "group" else [c])]


def grid_page_context(request: HtmxHttpRequest, dag: DagModel, *, run_id: str | None, task_id: str | None,
                      map_index: int | None, with_panel: bool = True) -> dict[str, Any]:
    """Everything the Grid page shows; the panel too when a task (and an index) is selected."""
    view = GridView.from_request(request)
    num_runs = view.num_runs
    runs = latest_runs(dag.dag_id, num_runs, state=view.run_state or None, run_type=view.run_type or None)
    selected = next((r for r in runs if r.run_id == run_id), None) if run_id else (runs[-1] if runs else None)
    if selected is None and run_id:
        selected = find_dag_run(dag.dag_id, run_id)
    nodes = build_tree(dag.data)
    cells = grid_cells(runs)
    _fill(nodes, runs, cells, dag.dag_id, selected, task_id, view.keep)
    if tolerated := tolerated_cells(dag.data, runs, cells):
        _mark_tolerated(nodes, tolerated)
    context: dict[str, Any] = {
        "dag": dag, "data": dag.data, "runs": runs, "nodes": nodes, "selected_run": selected, "selected_task": task_id,
        "num_runs": num_runs, "more_runs": num_runs + DEFAULT_NUM_RUNS, "can_operate": is_operator(request.user),
        "active": any(not r.is_finished for r in runs),
        # The grid's refresh keeps the selection it was rendered with (a click re-renders the grid).
        "grid_refresh_url": reverse_with_query("runs:grid", dag.dag_id, query={
            k: v for k, v in request.GET.items() if k in ("run_id", "task_id", "map_index", "num_runs", "run_state", "run_type")}),
        "run_columns": run_columns(dag.dag_id, runs, view.keep, timezone.now()),
        "view": view, "more_runs_url": reverse_with_query("runs:grid", dag.dag_id, query={**view.keep, "num_runs": num_runs + DEFAULT_NUM_RUNS}),
        "run_states": DagRunState.choices, "run_types": DagRunType.choices, "legend": [*STATE_BAR_ORDER, TOLERATED],
    }
    if with_panel and selected is not None and task_id and task_id in selected.serialized_dag.dag_data()["tasks"]:
        panel = panel_context(request, selected, task_id, map_index)
        # The panel's keys (run, page, ...) do not clash with the grid's (runs, nodes, ...).
        context.update(panel, panel=panel["kind"])
    elif with_panel and selected is not None and run_id and not task_id:
        # A run's bar: the run itself.
        context.update(run_context(request, dag, selected), panel="run")
    return context


@require_safe
@login_required
def grid(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    dag = get_dag_or_404(dag_id)
    # htmx: the grid's own refresh, or a click on a cell, a label or a run bar that selects a run and a task;
    # a click re-renders the grid around the new selection and sends the panel out of band.
    refresh = bool(request.htmx) and request.htmx.trigger == "grid-body"
    context = grid_page_context(request, dag, run_id=request.GET.get("run_id"), task_id=request.GET.get("task_id"),
                                map_index=map_index_param(request), with_panel=not refresh)
    if request.htmx:
        response = render(request, "runs/grid.html#grid-body", {**context, "details_oob": not refresh})
        if not context["active"] and refresh:
            response.status_code = HttpResponseStopPolling.status_code
        return response
    return render(request, "runs/grid.html", {**context, **watch_context(dag.dag_id)})
