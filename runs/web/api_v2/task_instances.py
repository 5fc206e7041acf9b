"""Task instances: list per run, listMapped, one instance (by map_index), its tries, marking
its state (with a dry run), clearing (task ids or [task_id, map_index] pairs), and its logs."""
from __future__ import annotations

from typing import Any, Literal

from django.db.models import Max, Min, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Query, Router, Schema
from ninja.errors import HttpError

from dagsapp.serialization import DagData
from runs.logs import read_log
from runs.models import DagModel, DagRun, TaskInstance, TaskInstanceLog, TaskInstanceState, TaskInstanceTry
from runs.services import clear_task_instances, mark_task_instances
from runs.web.api_v2.auth import require
from runs.web.api_v2.dag_runs import get_dag_run_or_404
from runs.web.api_v2.params import DateRanges, Page, like_pattern, ordering, range_filter
from runs.web.api_v2.responses import Versions, ti_json
from runs.web.api_v2.schemas import (
    ClearTaskInstancesBody,
    PatchTaskInstanceBody,
    TaskInstanceCollectionResponse,
    TaskInstanceHistoryCollectionResponse,
    TaskInstanceHistoryResponse,
    TaskInstanceResponse,
    TaskInstancesLogResponse,
)
from runs.web.api_v2.selection import changed_instances
from runs.web.queries import mapped_count, tolerated_summary

router = Router(tags=["Task Instance"])

S = TaskInstanceState
TI = "/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"
TI_ORDER = {"id": "id", "state": "state", "duration": "duration", "start_date": "start_date", "end_date": "end_date",
            "map_index": "map_index", "try_number": "try_number", "rendered_map_index": "rendered_map_index",
            "hostname": "hostname", "pid": "pid", "queued_when": "queued_at", "task_id": "task_id",
            "logical_date": "dag_run__logical_date", "run_after": "dag_run__logical_date", "dag_id": "dag_run__dag_id",
            "run_id": "dag_run__run_id", "dag_run_id": "dag_run__run_id", "updated_at": "updated_at"}
TI_RANGES = {"start_date": "start_date", "end_date": "end_date", "duration": "duration", "updated_at": "updated_at",
             "logical_date": "dag_run__logical_date", "run_after": "dag_run__logical_date"}


class InstanceFilters(DateRanges):
    state: list[str] | None = None
    map_index: list[int] | None = None
    try_number: list[int] | None = None
    rendered_map_index_pattern: str | None = None
    rendered_map_index_prefix_pattern: str | None = None
    order_by: list[str] | None = None


class RunInstanceFilters(InstanceFilters):
    task_id: str | None = None
    task_display_name_pattern: str | None = None
    task_display_name_prefix_pattern: str | None = None


def _filter(qs: QuerySet[TaskInstance], f: InstanceFilters) -> QuerySet[TaskInstance]:
    if f.state:
        # Airflow's "no status" is a null state; ours is the state "none".
        qs = qs.filter(state__in=[S.NONE if s in ("none", "null", "no_status") else s for s in f.state])
    if f.map_index:
        qs = qs.filter(map_index__in=f.map_index)
    if f.try_number:
        qs = qs.filter(try_number__in=f.try_number)
    return qs.filter(range_filter(f, TI_RANGES), like_pattern(f.rendered_map_index_pattern, "rendered_map_index"),
                     like_pattern(f.rendered_map_index_prefix_pattern, "rendered_map_index", prefix=True))


def _page(qs: QuerySet[TaskInstance], page: Page, runs: dict[int, DagRun], *, total: int | None = None, **extra: Any) -> dict[str, Any]:
    versions = Versions()
    data: dict[int, DagData] = {}
    out = []
    for ti in page.slice(qs):
        run = runs.get(ti.dag_run_id) or ti.dag_run
        tasks = data.setdefault(run.serialized_dag_id, run.serialized_dag.dag_data())["tasks"]
        out.append(ti_json(ti, run, versions, tasks=tasks))
    return {"task_instances": out, "total_entries": qs.count() if total is None else total, **extra}


def _task_or_404(run: DagRun, task_id: str) -> dict[str, Any]:
    task = run.serialized_dag.dag_data()["tasks"].get(task_id)
    if task is None:
        raise Http404(f"Task id {task_id} not found")
    return dict(task)


def get_ti_or_404(run: DagRun, task_id: str, map_index: int) -> TaskInstance:
    ti = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index=map_index).first()
    if ti is None:
        raise Http404(f"The Task Instance with dag_id: `{run.dag_id}`, run_id: `{run.run_id}`, task_id: `{task_id}` "
                      f"and map_index: `{map_index}` was not found")
    return ti


@router.get(TI, response=TaskInstanceCollectionResponse, summary="Get Task Instances")
def get_task_instances(request: HttpRequest, dag_id: str, dag_run_id: str, page: Query[Page],
                       filters: Query[RunInstanceFilters]) -> dict[str, Any]:
    """``~`` as the dag_run_id lists the instances of every run of the DAG; ``~`` as both, of every DAG."""
    qs = TaskInstance.objects.select_related("dag_run__serialized_dag", "trigger__triggerer")
    runs: dict[int, DagRun] = {}
    if dag_run_id != "~":
        run = get_dag_run_or_404(dag_id, dag_run_id)
        runs[run.pk] = run
        qs = qs.filter(dag_run=run)
    elif dag_id != "~":
        if not DagModel.objects.filter(dag_id=dag_id).exists():
            raise Http404(f"The Dag with ID: `{dag_id}` was not found")
        qs = qs.filter(dag_run__dag_id=dag_id)
    # Placeholders of mapped tasks not expanded yet stay in (Airflow lists them at -1 too),
    # those of nested levels not expanded yet (below -1) do not: they are no instance of Airflow's.
    qs = _filter(qs.filter(map_index__gte=-1), filters)
    if filters.task_id:
        qs = qs.filter(task_id=filters.task_id)
    qs = qs.filter(like_pattern(filters.task_display_name_pattern, "task_id"),
                   like_pattern(filters.task_display_name_prefix_pattern, "task_id", prefix=True))
    return _page(qs.order_by(*ordering(filters.order_by, TI_ORDER, default="map_index")), page, runs)


@router.get(TI + "/{task_id}/listMapped", response=TaskInstanceCollectionResponse, summary="Get Mapped Task Instances")
def get_mapped_task_instances(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, page: Query[Page],
                              filters: Query[InstanceFilters]) -> dict[str, Any]:
    run = get_dag_run_or_404(dag_id, dag_run_id)
    task = _task_or_404(run, task_id)
    if not task["is_mapped"]:
        raise Http404(f"Task id {task_id} is not mapped")
    qs = _filter(TaskInstance.objects.select_related("trigger__triggerer").filter(dag_run=run, task_id=task_id, map_index__gte=0),
                 filters)
    order = dict(TI_ORDER)
    if len(task.get("levels", [])) > 1:
        order["map_index"] = "map_path"  # a nested task's instances read in path order
    # Ours: the task's tolerated failures. (What a re-expansion found is on each instance,
    # item_change; its counts need every instance read, which a page must not pay for.)
    tolerated = tolerated_summary(run, task_id)
    # total_entries filtered by state at most: the run's frozen summary or live counts counted them.
    states = [S.NONE if s in ("none", "null", "no_status") else s for s in filters.state or []]
    only_state = not any(v for k, v in filters.dict().items() if k not in ("state", "order_by"))
    total = mapped_count(run, task_id, states or None) if only_state else None
    return _page(qs.order_by(*ordering(filters.order_by, order, default="map_index")), page, {run.pk: run}, total=total,
                 tolerated_failures=None if tolerated is None else {
                     "succeeded": tolerated.succeeded, "failed": tolerated.failed, "total": tolerated.total,
                     "summary": tolerated.describe()})


def _one(run: DagRun, task_id: str, map_index: int) -> dict[str, Any]:
    ti = get_ti_or_404(run, task_id, map_index)
    return ti_json(ti, run, Versions())


@router.get(TI + "/{task_id}", response=TaskInstanceResponse, summary="Get Task Instance")
def get_task_instance(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str) -> dict[str, Any]:
    run = get_dag_run_or_404(dag_id, dag_run_id)
    if _task_or_404(run, task_id)["is_mapped"]:
        raise Http404("Task instance is mapped, add the map_index value to the URL")
    return _one(run, task_id, -1)


@router.get(TI + "/{task_id}/{mapindex:map_index}", response=TaskInstanceResponse, summary="Get Mapped Task Instance")
def get_mapped_task_instance(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    return _one(get_dag_run_or_404(dag_id, dag_run_id), task_id, map_index)


# --- tries -----------------------------------------------------------------------------------

def _tries(run: DagRun, ti: TaskInstance) -> list[dict[str, Any]]:
    """One entry per try, oldest first: the tries kept when a retry or a clear superseded them
    (TaskInstanceTry), then the current one, the instance itself. A try from before tries were
    kept has only its log: its start and end are its first and last log lines, its state null."""
    kept = {t.try_number: t for t in TaskInstanceTry.objects.filter(task_instance=ti, try_number__lt=ti.try_number)}
    spans = {} if len(kept) == max(0, ti.try_number - 1) else {
        t: (first, last) for t, first, last in TaskInstanceLog.objects.filter(task_instance=ti).values("try_number")
        .annotate(first=Min("created_at"), last=Max("created_at")).values_list("try_number", "first", "last")}
    current = ti_json(ti, run, Versions())
    tries = []
    for number in range(1, ti.try_number):
        old = kept.get(number)
        if old is not None:
            tries.append({**current, "try_number": number, "state": None if old.state == S.NONE else old.state,
                          "start_date": old.start_date, "end_date": old.end_date, "duration": old.duration,
                          "hostname": old.hostname or None, "pid": old.pid, "queued_when": old.queued_at, "max_tries": old.max_tries})
            continue
        first, last = spans.get(number, (None, None))
        tries.append({**current, "try_number": number, "state": None, "start_date": first, "end_date": last,
                      "duration": (last - first).total_seconds() if first and last else None, "hostname": None, "pid": None,
                      "queued_when": None})
    return [*tries, current] if ti.try_number else []


@router.get(TI + "/{task_id}/tries", response=TaskInstanceHistoryCollectionResponse, summary="Get Task Instance Tries")
def get_task_instance_tries(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
    run = get_dag_run_or_404(dag_id, dag_run_id)
    tries = _tries(run, get_ti_or_404(run, task_id, map_index))
    return {"task_instances": tries, "total_entries": len(tries)}


@router.get(TI + "/{task_id}/{mapindex:map_index}/tries", response=TaskInstanceHistoryCollectionResponse,
            summary="Get Mapped Task Instance Tries")
def get_mapped_task_instance_tries(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int) -> dict[str, Any]:
    return get_task_instance_tries(request, dag_id, dag_run_id, task_id, map_index)


def _try(run: DagRun, task_id: str, map_index: int, number: int) -> dict[str, Any]:
    tries = _tries(run, get_ti_or_404(run, task_id, map_index))
    if not 1 <= number <= len(tries):
        raise Http404(f"The Task Instance with dag_id: `{run.dag_id}`, run_id: `{run.run_id}`, task_id: `{task_id}`, "
                      f"try_number: `{number}` and map_index: `{map_index}` was not found")
    return tries[number - 1]


@router.get(TI + "/{task_id}/tries/{int:task_try_number}", response=TaskInstanceHistoryResponse, summary="Get Task Instance Try Details")
def get_task_instance_try_details(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, task_try_number: int,
                                  map_index: int = -1) -> dict[str, Any]:
    return _try(get_dag_run_or_404(dag_id, dag_run_id), task_id, map_index, task_try_number)


@router.get(TI + "/{task_id}/{mapindex:map_index}/tries/{int:task_try_number}", response=TaskInstanceHistoryResponse,
            summary="Get Mapped Task Instance Try Details")
def get_mapped_task_instance_try_details(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int,
                                         task_try_number: int) -> dict[str, Any]:
    return _try(get_dag_run_or_404(dag_id, dag_run_id), task_id, map_index, task_try_number)


# --- marking ---------------------------------------------------------------------------------

def _related_tasks(data: DagData, task_id: str, *, upstream: bool, downstream: bool) -> list[str]:
    out: list[str] = []
    for key, wanted in (("upstream", upstream), ("downstream", downstream)):
        stack = list(data["tasks"][task_id][key]) if wanted else []  # type: ignore[literal-required]
        while stack:
            t = stack.pop()
            if t not in out:
                out.append(t)
                stack.extend(data["tasks"][t][key])  # type: ignore[literal-required]
    return out


def _patch(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int | None,
           body: PatchTaskInstanceBody, *, dry_run: bool) -> dict[str, Any]:
    require(request, "operator")
    run = get_dag_run_or_404(dag_id, dag_run_id)
    task = _task_or_404(run, task_id)
    if body.include_future or body.include_past:
        raise HttpError(400, "include_future and include_past are not supported: mark the instances of each run")
    if body.new_state is None:
        # Notes are not kept by this server: a patch without a state changes nothing.
        raise HttpError(400, "new_state is required: notes are not kept by this server")
    if map_index is None:
        if task["is_mapped"]:
            map_indexes = list(TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0)
                               .values_list("map_index", flat=True))
        else:
            map_indexes = [-1]
    else:
        get_ti_or_404(run, task_id, map_index)
        map_indexes = [map_index]
    data = run.serialized_dag.dag_data()
    state: Literal["success", "failed"] = body.new_state

    def mark() -> None:
        mark_task_instances(dag_run=run, task_id=task_id, map_indexes=map_indexes, state=state)
        for other in _related_tasks(data, task_id, upstream=body.include_upstream, downstream=body.include_downstream):
            indexes = list(TaskInstance.objects.filter(dag_run=run, task_id=other, map_index__gte=-1).values_list("map_index", flat=True))
            mark_task_instances(dag_run=run, task_id=other, map_indexes=indexes, state=state)

    return changed_instances([run], mark, dry_run=dry_run, as_after=True)


@router.patch(TI + "/{task_id}", response=TaskInstanceCollectionResponse, summary="Patch Task Instance")
def patch_task_instance(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, body: PatchTaskInstanceBody,
                        map_index: int | None = None) -> dict[str, Any]:
    return _patch(request, dag_id, dag_run_id, task_id, map_index, body, dry_run=False)


@router.patch(TI + "/{task_id}/dry_run", response=TaskInstanceCollectionResponse, summary="Patch Task Instance Dry Run")
def patch_task_instance_dry_run(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, body: PatchTaskInstanceBody,
                                map_index: int | None = None) -> dict[str, Any]:
    return _patch(request, dag_id, dag_run_id, task_id, map_index, body, dry_run=True)


@router.patch(TI + "/{task_id}/{mapindex:map_index}", response=TaskInstanceCollectionResponse, summary="Patch Task Instance By Map Index")
def patch_task_instance_by_map_index(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int,
                                     body: PatchTaskInstanceBody) -> dict[str, Any]:
    return _patch(request, dag_id, dag_run_id, task_id, map_index, body, dry_run=False)


@router.patch(TI + "/{task_id}/{mapindex:map_index}/dry_run", response=TaskInstanceCollectionResponse,
              summary="Patch Task Instance Dry Run By Map Index")
def patch_task_instance_dry_run_by_map_index(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, map_index: int,
                                             body: PatchTaskInstanceBody) -> dict[str, Any]:
    return _patch(request, dag_id, dag_run_id, task_id, map_index, body, dry_run=True)


# --- clearing --------------------------------------------------------------------------------

def _clear_targets(run: DagRun, body: ClearTaskInstancesBody) -> dict[str, list[int]]:
    """Task id -> the indexes to clear in this run, as the body selects them."""
    data = run.serialized_dag.dag_data()
    wanted: dict[str, set[int] | None] = {}
    for entry in body.task_ids if body.task_ids is not None else data["task_order"]:
        task_id, index = (entry, None) if isinstance(entry, str) else entry
        if task_id not in data["tasks"]:
            raise HttpError(400, f"Task {task_id!r} is not in DAG {run.dag_id!r}")
        if index is None:
            wanted[task_id] = None
        elif wanted.get(task_id, set()) is not None:
            wanted.setdefault(task_id, set()).add(index)  # type: ignore[union-attr]
    if body.include_upstream:
        for task_id in list(wanted):
            for up in _related_tasks(data, task_id, upstream=True, downstream=False):
                wanted[up] = None
    states = [S.FAILED, S.UPSTREAM_FAILED] if body.only_failed else [S.RUNNING] if body.only_running else None
    targets: dict[str, list[int]] = {}
    for task_id, indexes in wanted.items():
        qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=-1).exclude(state=S.REMOVED)
        if indexes is not None:
            qs = qs.filter(map_index__in=indexes)
        if states is not None:
            qs = qs.filter(state__in=states)
        found = list(qs.values_list("map_index", flat=True))
        if found:
            targets[task_id] = found
    return targets


@router.post("/dags/{dag_id}/clearTaskInstances", response=TaskInstanceCollectionResponse, summary="Post Clear Task Instances")
def post_clear_task_instances(request: HttpRequest, dag_id: str, body: ClearTaskInstancesBody) -> dict[str, Any]:
    """Runs instances again (try_number + 1), their siblings untouched. ``task_ids`` entries are
    task ids (every instance) or ``[task_id, map_index]`` pairs. ``dry_run`` (the default, as in
    Airflow) lists what would be cleared; ``only_failed`` is on by default too."""
    require(request, "operator")
    if not DagModel.objects.filter(dag_id=dag_id).exists():
        raise Http404(f"Dag id {dag_id} not found")
    if body.include_future or body.include_past:
        raise HttpError(400, "include_future and include_past are not supported: clear the instances of each run")
    runs_qs = DagRun.objects.select_related("serialized_dag").filter(dag_id=dag_id)
    if body.dag_run_id is not None:
        runs_qs = runs_qs.filter(run_id=body.dag_run_id)
        if not runs_qs.exists():
            raise Http404(f"Dag Run id {body.dag_run_id} not found in dag {dag_id}")
    runs_qs = runs_qs.filter(Q(logical_date__gte=body.start_date) if body.start_date else Q(),
                             Q(logical_date__lte=body.end_date) if body.end_date else Q())
    runs = list(runs_qs.order_by("logical_date"))

    def clear() -> None:
        for run in runs:
            for task_id, indexes in _clear_targets(run, body).items():
                clear_task_instances(dag_run=run, task_id=task_id, map_indexes=indexes, downstream=body.include_downstream)

    return changed_instances(runs, clear, dry_run=body.dry_run)


# --- logs ------------------------------------------------------------------------------------

class LogParams(Schema):
    map_index: int = -1
    full_content: bool = False
    token: str | None = None


@router.get(TI + "/{task_id}/logs/{int:try_number}", response=TaskInstancesLogResponse, summary="Get Log")
def get_log(request: HttpRequest, dag_id: str, dag_run_id: str, task_id: str, try_number: int, params: Query[LogParams]) -> Any:
    """One try's whole log: JSON (one message per line), or the text with ``Accept: text/plain``."""
    run = get_dag_run_or_404(dag_id, dag_run_id)
    ti = get_ti_or_404(run, task_id, params.map_index)
    if not 1 <= try_number <= ti.try_number:
        raise Http404(f"TaskInstance {task_id}[{params.map_index}] has no try {try_number} (tries so far: {ti.try_number})")
    text, _ = read_log(ti.pk, try_number)
    if request.headers.get("Accept", "").startswith("text/plain"):
        return HttpResponse(text, content_type="text/plain; charset=utf-8")
    return {"content": [{"event": line} for line in text.splitlines()], "continuation_token": None}
