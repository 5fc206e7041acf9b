"""Actions on runs that the CLI, the scheduler and the web pages share."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, FloatField, Func, Q, QuerySet, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from dagsapp.jsonvalues import MAX_JSON_DEPTH, json_problem
from dagsapp.params import validate_conf
from dagsapp.serialization import DagData, TaskData
from runs import history, summaries
from runs.audit import record
from runs.deferral import cancel_deferrals
from runs.models import (
    AuditEvent,
    DagModel,
    DagRun,
    DagRunState,
    DagRunType,
    TaskInstance,
    TaskInstanceState,
    TaskMap,
    Variable,
    XCom,
)
from runs.models.taskinstance import UNFINISHED_STATES, path_label
from runs.notify import notify_scheduler
from runs.resolver import task_levels


class DagRunError(ValueError):
    pass


class RunIdError(DagRunError):
    """The run id asked for cannot be used (taken, too long, a bad character)."""


class ParamsError(DagRunError):
    """The conf does not fit the DAG's Params: one message per param (the trigger form shows each
    beside its field; the CLI and the API show them all)."""

    def __init__(self, dag_id: str, errors: dict[str, str]) -> None:
        self.errors = errors
        detail = "; ".join(f"{name}: {message}" for name, message in errors.items())
        super().__init__(f"conf does not fit the params of DAG {dag_id!r}: {detail}")


def check_params(data: DagData, conf: dict[str, Any]) -> None:
    """ParamsError unless every Param of the DAG accepts the value a run with this conf gets."""
    specs = data.get("params_schema")
    if specs:
        errors = validate_conf(specs, data["params"], conf)
        if errors:
            raise ParamsError(data["dag_id"], errors)


def _refuse_constant(name: str) -> Any:
    raise DagRunError(f"conf contains {name}, which JSON cannot store")


def parse_conf(raw: str | None) -> dict[str, Any]:
    """Trigger conf from user text: empty means {}, anything else must be a JSON object
    that PostgreSQL can store (see ``check_conf``)."""
    if raw is None or not raw.strip():
        return {}
    try:
        # Python's json reads NaN and Infinity, which are not JSON and which jsonb refuses.
        value = json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise DagRunError(f"conf is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise DagRunError(f"conf is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except DagRunError:
        raise
    except ValueError:
        # The one other ValueError json.loads raises: an integer longer than Python converts.
        raise DagRunError(f"conf has a number of more than {sys.get_int_max_str_digits()} digits") from None
    if not isinstance(value, dict):
        raise DagRunError(f"conf must be a JSON object, not {type(value).__name__}")
    check_conf(value)
    return value


def check_conf(conf: dict[str, Any]) -> None:
    """DagRunError unless the conf can be stored as it is (a float such as 1e999 reads as Infinity)."""
    problem = json_problem(conf)
    if problem:
        raise DagRunError(f"conf {problem}")


def create_dag_run(
    *,
    dag_id: str,
    conf: dict[str, Any] | None = None,
    run_type: str = DagRunType.MANUAL,
    logical_date: datetime | None = None,
    run_id: str | None = None,
    data_interval: tuple[datetime, datetime] | None = None,
) -> DagRun:
    """A new run of the DAG's latest version, with one not-yet-scheduled instance per task."""
    dag = DagModel.objects.select_related("latest_serialized").filter(dag_id=dag_id, is_active=True).first()
    if dag is None or dag.latest_serialized is None:
        raise DagRunError(f"DAG {dag_id!r} does not exist or has no parsed version")
    if conf is not None and not isinstance(conf, dict):
        raise DagRunError(f"conf must be a JSON object, not {type(conf).__name__}")
    if conf:
        check_conf(conf)
    data = dag.latest_serialized.dag_data()
    check_params(data, conf or {})
    logical_date = logical_date or timezone.now()
    run_id = run_id or f"{run_type}__{logical_date.isoformat()}"
    if len(run_id) > 250 or any(c in run_id for c in "/\\\x00"):
        raise RunIdError("run_id must be at most 250 characters, without '/', '\\' or NUL")
    with transaction.atomic():
        if DagRun.objects.filter(dag_id=dag_id, run_id=run_id).exists():
            raise RunIdError(f"A run {run_id!r} of DAG {dag_id!r} already exists")
        run = DagRun.objects.create(
            dag_id=dag_id, run_id=run_id, run_type=run_type, logical_date=logical_date, conf=conf or {},
            state=DagRunState.QUEUED, serialized_dag=dag.latest_serialized,
            data_interval_start=data_interval[0] if data_interval else logical_date,
            data_interval_end=data_interval[1] if data_interval else logical_date,
        )
        TaskInstance.objects.bulk_create([
            TaskInstance(dag_run=run, task_id=task_id, map_index=-1, state=TaskInstanceState.NONE,
                         max_tries=int(data["tasks"][task_id]["retries"]))
            for task_id in data["task_order"]
        ])
        # The conf itself is not copied: it may hold secrets, and the run keeps it.
        record(AuditEvent.TRIGGER, dag_id=dag_id, run_id=run_id, count=len(data["task_order"]),
               extra={"run_type": str(run_type), "logical_date": logical_date.isoformat(), "conf_keys": sorted(conf or {})})
        transaction.on_commit(notify_scheduler)
    return run


def _downstream_ids(data: DagData, task_id: str) -> list[str]:
    seen: list[str] = []
    stack = list(data["tasks"][task_id]["downstream"])
    while stack:
        t = stack.pop()
        if t not in seen:
            seen.append(t)
            stack.extend(data["tasks"][t]["downstream"])
    order = {t: i for i, t in enumerate(data["task_order"])}
    return sorted(seen, key=order.__getitem__)


def _reset(dag_run: DagRun, data: DagData, where: Any) -> int:
    """Put instances back to 'no status' for a new try, dropping the results of their last try."""
    tis = list(TaskInstance.objects.filter(where, dag_run=dag_run).exclude(state=TaskInstanceState.REMOVED).values_list("pk", "task_id", "map_index", "try_number"))
    if not tis:
        return 0
    # The tries being superseded stay readable (the API's tries of an instance).
    history.keep_current_tries(pk for pk, _task, _index, _try in tis)
    by_task: dict[str, list[int]] = {}
    for _pk, task_id, map_index, _try in tis:
        by_task.setdefault(task_id, []).append(map_index)
    for task_id, indexes in by_task.items():
        # Results of the previous try must not feed anyone (an expansion would reuse a stale length).
        XCom.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=indexes).delete()
        TaskMap.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=indexes).delete()
        retries = int(data["tasks"][task_id]["retries"]) if task_id in data["tasks"] else 0
        # A deferred instance's trigger goes: its triggerer stops it, and a late event matches nothing.
        cancel_deferrals(Q(dag_run=dag_run, task_id=task_id, map_index__in=indexes))
        # A running try that was cleared loses its compare-and-swap at the end: its result is discarded.
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=indexes).exclude(state=TaskInstanceState.REMOVED).update(
            # The times and host of the last try are not the next one's: a cleared instance shows none.
            state=TaskInstanceState.NONE, start_date=None, end_date=None, duration=None, next_retry_at=None, queued_at=None,
            hostname="", pid=None, max_tries=F("try_number") + retries, next_method=None, next_kwargs=None, trigger_timeout=None)
    return len(tis)


def _reopen_run(dag_run: DagRun) -> None:
    DagRun.objects.filter(pk=dag_run.pk).update(state=DagRunState.RUNNING, end_date=None, state_summary=None)
    transaction.on_commit(notify_scheduler)


def clear_task_instances(*, dag_run: DagRun, task_id: str, map_indexes: list[int], downstream: bool = False) -> int:
    """Run these instances again (try_number + 1); siblings are untouched.

    With ``downstream``, the tasks after it are cleared too: inside the same mapped task group
    only the same indexes, elsewhere every instance. Returns how many instances were cleared.
    """
    data = dag_run.serialized_dag.dag_data()
    if task_id not in data["tasks"]:
        raise DagRunError(f"Task {task_id!r} is not in DAG {dag_run.dag_id!r}")
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        n = _reset(dag_run, data, Q(task_id=task_id, map_index__in=map_indexes))
        if downstream and data.get("nested"):
            paths = [list(p or [mi]) for mi, p in TaskInstance.objects.filter(
                dag_run=dag_run, task_id=task_id, map_index__in=map_indexes).values_list("map_index", "map_path")]
            n += _clear_downstream_by_prefix(dag_run, data, task_id, paths)
        elif downstream:
            group = data["tasks"][task_id]["mapping"]
            group_id = group["group_id"] if group and group["kind"] == "group" else None
            for d in _downstream_ids(data, task_id):
                dt = data["tasks"][d]
                same_group = group_id is not None and dt["mapping"] and dt["mapping"].get("group_id") == group_id
                if same_group:
                    n += _reset(dag_run, data, Q(task_id=d, map_index__in=map_indexes))
                elif dt["mapping"] is not None and dt["mapping"]["kind"] != "group" and _maps_over(dt, task_id):
                    n += _reexpand(dag_run, data, d)
                else:
                    n += _reset(dag_run, data, Q(task_id=d))
        _reopen_run(dag_run)
        record(AuditEvent.CLEAR, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id,
               map_index=map_indexes[0] if len(map_indexes) == 1 else None, count=n,
               extra={"map_indexes": map_indexes[:100], "downstream": downstream})
    return n


def clear_outer_index(*, dag_run: DagRun, task_id: str, prefix: list[int], downstream: bool = False) -> int:
    """Nested mapping: run again every instance of the task under this path prefix (``[2]`` is
    everything of outer index 2), leaving the other outer indexes alone. With ``downstream``,
    the tasks after it are cleared under the same prefix where they share its mapped groups."""
    data = dag_run.serialized_dag.dag_data()
    task = data["tasks"].get(task_id)
    if task is None or len(task.get("levels", [])) < 2:
        raise DagRunError(f"Task {task_id!r} is not mapped inside a mapped task group of DAG {dag_run.dag_id!r}")
    if not prefix or len(prefix) >= len(task["levels"]) or any(i < 0 for i in prefix):
        raise DagRunError(f"{path_label(prefix) or '[]'} is not an outer index of {task_id!r}")
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        n = _reset(dag_run, data, Q(task_id=task_id, map_index__gte=0) & _under(prefix))
        if not n:
            raise DagRunError(f"{task_id!r} has no instance under {path_label(prefix) or '[]'}")
        if downstream:
            n += _clear_downstream_by_prefix(dag_run, data, task_id, [prefix])
        _reopen_run(dag_run)
        record(AuditEvent.CLEAR_OUTER, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, count=n,
               extra={"prefix": prefix, "downstream": downstream})
    return n


def _under(prefix: list[int]) -> Q:
    """Instances of a nested task whose path starts with ``prefix``."""
    return Q(**{f"map_path__0_{len(prefix)}": prefix}) if prefix else Q()


def _clear_downstream_by_prefix(dag_run: DagRun, data: DagData, task_id: str, paths: list[list[int]]) -> int:
    """Downstream clearing in a DAG with nested mapping: a task that shares c mapped groups with
    the cleared one is cleared under the cleared paths' prefixes of length c only; a nested task
    is expanded again under that prefix (its inner lists may change), keeping its tries."""
    levels = task_levels(data, task_id)
    n = 0
    for d in _downstream_ids(data, task_id):
        d_levels = task_levels(data, d)
        c = 0
        for a, b in zip(levels, d_levels, strict=False):
            if a != b:
                break
            c += 1
        prefixes = sorted({tuple(p[:c]) for p in paths}) if c else [()]
        for prefix in prefixes:
            if len(d_levels) > 1 and len(prefix) < len(d_levels):
                n += _reexpand_prefix(dag_run, data, d, list(prefix))
            elif len(d_levels) == 1 and not prefix and data["tasks"][d]["mapping"] is not None:
                n += _reexpand(dag_run, data, d)
            elif prefix and len(d_levels) == 1:
                n += _reset(dag_run, data, Q(task_id=d, map_index=prefix[0], map_path__isnull=True))
            else:
                n += _reset(dag_run, data, Q(task_id=d) & _under(list(prefix)))
    return n


def _reexpand_prefix(dag_run: DagRun, data: DagData, task_id: str, prefix: list[int]) -> int:
    """Everything of a nested task under ``prefix`` goes back to one placeholder for it: its
    instances are set aside (removed, tries kept) until the expansion finds them again."""
    under = Q(task_id=task_id) & _under(prefix)
    n = _reset(dag_run, data, under & Q(map_index__gte=0))
    TaskInstance.objects.filter(under, dag_run=dag_run, map_index__gte=0).update(state=TaskInstanceState.REMOVED)
    # Placeholders under it (and the one at it) make way for the new one.
    TaskInstance.objects.filter(under, dag_run=dag_run, map_index__lt=0).delete()
    retries = int(data["tasks"][task_id]["retries"])
    if not prefix:
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index=-1).delete()
        TaskInstance.objects.create(dag_run=dag_run, task_id=task_id, map_index=-1, state=TaskInstanceState.NONE, max_tries=retries)
        return n
    lowest = TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id).order_by("map_index").values_list("map_index", flat=True).first()
    TaskInstance.objects.create(dag_run=dag_run, task_id=task_id, map_index=min(lowest if lowest is not None else -1, -1) - 1,
                                map_path=prefix, state=TaskInstanceState.NONE, max_tries=retries)
    return n


def _maps_over(task: TaskData, upstream: str) -> bool:
    return upstream in task["upstream"]


def _reexpand(dag_run: DagRun, data: DagData, task_id: str) -> int:
    if len(data["tasks"][task_id].get("levels", [])) > 1:
        return _reexpand_prefix(dag_run, data, task_id, [])  # a nested task: everything under its root
    n = _reset(dag_run, data, Q(task_id=task_id))
    # A placeholder with no status makes the scheduler expand again from the current inputs:
    # new indexes are created and indexes past the new length are marked removed.
    TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index=-1).delete()
    TaskInstance.objects.create(dag_run=dag_run, task_id=task_id, map_index=-1, state=TaskInstanceState.NONE,
                                max_tries=int(data["tasks"][task_id]["retries"]))
    return n


def clear_mapped_task(*, dag_run: DagRun, task_id: str, downstream: bool = False) -> int:
    """Clear every instance of a mapped task and expand it again from its current inputs."""
    data = dag_run.serialized_dag.dag_data()
    task = data["tasks"].get(task_id)
    if task is None or task["mapping"] is None:
        raise DagRunError(f"Task {task_id!r} is not a mapped task of DAG {dag_run.dag_id!r}")
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        if len(task.get("levels", [])) > 1:
            n = _reexpand_prefix(dag_run, data, task_id, [])
            if downstream:
                n += _clear_downstream_by_prefix(dag_run, data, task_id, [[]])
        else:
            n = _reexpand(dag_run, data, task_id)
            if downstream:
                for d in _downstream_ids(data, task_id):
                    dt = data["tasks"][d]
                    n += _reexpand(dag_run, data, d) if dt["mapping"] is not None else _reset(dag_run, data, Q(task_id=d))
        _reopen_run(dag_run)
        record(AuditEvent.CLEAR_MAPPED, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, count=n,
               extra={"downstream": downstream})
    return n


def clear_mapped_task_changed(*, dag_run: DagRun, task_id: str, downstream: bool = False) -> int:
    """Clear only new, changed and failed: expand the mapped task again from its current inputs,
    keeping the success of every index whose item is unchanged (dagsapp.identity).

    Which items changed is known only once the inputs are there (an upstream may be running
    again), so the placeholder asks the expansion to compare identities and re-run every index
    that is new or changed. An index that did not succeed runs again whatever its item, so it is
    cleared now: left failed, it would fail the downstream before the expansion. With
    ``downstream``, the tasks after it are cleared as ``clear_mapped_task`` does. Returns how
    many instances were cleared now.
    """
    data = dag_run.serialized_dag.dag_data()
    task = data["tasks"].get(task_id)
    if task is None or task["mapping"] is None:
        raise DagRunError(f"Task {task_id!r} is not a mapped task of DAG {dag_run.dag_id!r}")
    if len(task.get("levels", [])) > 1:
        raise DagRunError(f"{task_id!r} is mapped inside a mapped task group: clear its outer indexes instead "
                          "(item identity does not cover nested levels yet)")
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        n = _reset(dag_run, data, Q(task_id=task_id, map_index__gte=0) & ~Q(state=TaskInstanceState.SUCCESS))
        TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index=-1).delete()
        TaskInstance.objects.create(dag_run=dag_run, task_id=task_id, map_index=-1, state=TaskInstanceState.NONE,
                                    max_tries=int(task["retries"]), keep_unchanged=True)
        if downstream:
            for d in _downstream_ids(data, task_id):
                dt = data["tasks"][d]
                n += _reexpand(dag_run, data, d) if dt["mapping"] is not None else _reset(dag_run, data, Q(task_id=d))
        _reopen_run(dag_run)
        record(AuditEvent.CLEAR_CHANGED, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, count=n,
               extra={"downstream": downstream})
    return n


class _Seconds(Func):
    """An interval in seconds (PostgreSQL's EXTRACT(EPOCH ...))."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


def mark_task_instances(*, dag_run: DagRun, task_id: str, map_indexes: list[int], state: str) -> int:
    """Set instances to success or failed by hand; a running try's late result is then discarded."""
    if state not in (TaskInstanceState.SUCCESS, TaskInstanceState.FAILED):
        raise DagRunError(f"Instances can be marked success or failed, not {state!r}")
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        cancel_deferrals(Q(dag_run=dag_run, task_id=task_id, map_index__in=map_indexes) & ~Q(state=state))
        n = _mark(TaskInstance.objects.filter(dag_run=dag_run, task_id=task_id, map_index__in=map_indexes)
                  .exclude(state__in=[state, TaskInstanceState.REMOVED]), state)
        if n:
            _reopen_run(dag_run)
        record(AuditEvent.MARK, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id,
               map_index=map_indexes[0] if len(map_indexes) == 1 else None, count=n,
               extra={"state": str(state), "map_indexes": map_indexes[:100]})
    return n


def _mark(instances: QuerySet[TaskInstance], state: str) -> int:
    """Set ``state`` with figures consistent with it: an instance that ran keeps its end (a
    running one ends now) and its duration is end - start; one that never started gets no times."""
    now = timezone.now()
    started = Q(start_date__isnull=False)
    end = Case(When(started, then=Coalesce(F("end_date"), Value(now))), default=None, output_field=DateTimeField())
    seconds = Case(When(started, then=_Seconds(Coalesce(F("end_date"), Value(now)) - F("start_date"))), default=None,
                   output_field=FloatField())
    return instances.update(state=state, end_date=end, duration=seconds, next_retry_at=None, next_method=None, next_kwargs=None,
                            trigger_timeout=None)


RunClearScope = Literal["all", "failed"]
# "Only failed": what Airflow's clear of a run with only_failed takes.
FAILED_STATES = (TaskInstanceState.FAILED, TaskInstanceState.UPSTREAM_FAILED)


def clear_dag_run(*, dag_run: DagRun, only: RunClearScope = "all") -> int:
    """Run the whole run again, or only its failed and upstream-failed instances (Airflow's
    "Clear run" with or without "only failed"). A mapped task cleared whole expands again from
    its inputs, as does one whose expansion failed; failed indexes of an expanded task run
    again at their index. Returns how many instances were cleared."""
    data = dag_run.serialized_dag.dag_data()
    n = 0
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        failed_placeholders = set(TaskInstance.objects.filter(dag_run=dag_run, map_index=-1, state__in=FAILED_STATES)
                                  .values_list("task_id", flat=True))
        for task_id in data["task_order"]:
            mapped = data["tasks"][task_id]["mapping"] is not None
            if mapped and (only == "all" or task_id in failed_placeholders):
                n += _reexpand(dag_run, data, task_id)
            elif only == "all":
                n += _reset(dag_run, data, Q(task_id=task_id))
            else:
                n += _reset(dag_run, data, Q(task_id=task_id, state__in=FAILED_STATES))
        if n:
            _reopen_run(dag_run)
        record(AuditEvent.CLEAR_RUN, dag_id=dag_run.dag_id, run_id=dag_run.run_id, count=n, extra={"only": only})
    return n


def mark_dag_run(*, dag_run: DagRun, state: str) -> int:
    """Set a run's state by hand, as Airflow does (the run's Mark buttons, the API's PATCH): success
    marks every instance not success, skipped or removed success; failed marks the running
    instances failed and skips the ones that have not finished; queued hands the run back to the
    scheduler. A running try's late result is then discarded (its compare-and-swap fails), and a
    deferred instance's trigger goes. Returns how many instances changed."""
    if state not in (DagRunState.SUCCESS, DagRunState.FAILED, DagRunState.QUEUED):
        raise DagRunError(f"A run can be set to queued, success or failed, not {state!r}")
    S = TaskInstanceState
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        if state == DagRunState.QUEUED:
            DagRun.objects.filter(pk=dag_run.pk).update(state=state, end_date=None, state_summary=None)
            transaction.on_commit(notify_scheduler)
            record(AuditEvent.MARK_RUN, dag_id=dag_run.dag_id, run_id=dag_run.run_id, count=0, extra={"state": str(state)})
            return 0
        instances = TaskInstance.objects.filter(dag_run=dag_run)
        cancel_deferrals(Q(dag_run=dag_run, state=S.DEFERRED))
        if state == DagRunState.SUCCESS:
            n = _mark(instances.exclude(state__in=[S.SUCCESS, S.SKIPPED, S.REMOVED]), S.SUCCESS)
        else:
            n = _mark(instances.filter(state=S.RUNNING), S.FAILED)
            n += _mark(instances.filter(state__in=UNFINISHED_STATES - {S.RUNNING}), S.SKIPPED)
        now = timezone.now()
        DagRun.objects.filter(pk=dag_run.pk).update(state=state, start_date=Coalesce(F("start_date"), Value(now)),
                                                    end_date=now, state_summary=None)
        # Frozen with the final state, as a run the scheduler ends: the Grid never aggregates it again.
        summaries.freeze(dag_run.pk, summaries.aggregate([dag_run.pk]).get(dag_run.pk, []))
        record(AuditEvent.MARK_RUN, dag_id=dag_run.dag_id, run_id=dag_run.run_id, count=n, extra={"state": str(state)})
    return n


@dataclass(frozen=True)
class PlannedTask:
    """One task a clear touches: some of its indexes, every instance, or every instance and a new expansion."""

    task_id: str
    map_indexes: tuple[int, ...] | None = None
    reexpand: bool = False

    def describe(self, *, shown: int = 5) -> str:
        if self.reexpand:
            return f"{self.task_id} [all, expanded again]"
        if self.map_indexes is None:
            return self.task_id
        indexes = ", ".join(str(i) for i in self.map_indexes[:shown]) + (", …" if len(self.map_indexes) > shown else "")
        return f"{self.task_id} [{indexes}]"


@dataclass(frozen=True)
class ClearPlan:
    """What a clear will touch, computed before it is done: the dialog lists it, the POST applies
    the same plan (Airflow's clear options: downstream, upstream, only failed)."""

    tasks: tuple[PlannedTask, ...]
    only_failed: bool = False

    def where(self) -> Q:
        """The instances the plan resets (a re-expansion resets every instance of its task)."""
        where = Q(pk__in=[])
        for t in self.tasks:
            q = Q(task_id=t.task_id) if t.map_indexes is None else Q(task_id=t.task_id, map_index__in=t.map_indexes)
            where |= q if t.reexpand or not self.only_failed else q & Q(state__in=FAILED_STATES)
        return where & ~Q(state=TaskInstanceState.REMOVED)

    def describe(self) -> str:
        return ", ".join(t.describe() for t in self.tasks)


def _upstream_ids(data: DagData, task_id: str) -> list[str]:
    seen: list[str] = []
    stack = list(data["tasks"][task_id]["upstream"])
    while stack:
        t = stack.pop()
        if t not in seen and t in data["tasks"]:
            seen.append(t)
            stack.extend(data["tasks"][t]["upstream"])
    return seen


def plan_clear(*, dag_run: DagRun, task_id: str, map_indexes: list[int] | None, downstream: bool = False,
               upstream: bool = False, only_failed: bool = False) -> ClearPlan:
    """Which instances a clear of ``task_id`` (some indexes, or the whole task when None) takes.

    A whole mapped task expands again from its inputs, as does a mapped task whose upstream is
    cleared too (its input is recomputed). Downstream follows ``clear_task_instances``: the same
    indexes inside the same mapped group, a re-expansion for a task mapped over this one, every
    instance elsewhere. With ``only_failed``, only failed and upstream-failed instances are reset
    and nothing expands again.
    """
    data = dag_run.serialized_dag.dag_data()
    if task_id not in data["tasks"]:
        raise DagRunError(f"Task {task_id!r} is not in DAG {dag_run.dag_id!r}")
    task = data["tasks"][task_id]
    mapped = task["mapping"] is not None
    ups = _upstream_ids(data, task_id) if upstream else []
    whole = map_indexes is None or (mapped and bool(ups))
    planned: dict[str, PlannedTask] = {u: PlannedTask(u, reexpand=data["tasks"][u]["mapping"] is not None and not only_failed)
                                       for u in ups}
    planned[task_id] = PlannedTask(task_id, None if whole else tuple(sorted(set(map_indexes or []))),
                                   reexpand=mapped and whole and not only_failed)
    if downstream:
        group = task["mapping"]
        group_id = group["group_id"] if group and group["kind"] == "group" else None
        for d in _downstream_ids(data, task_id):
            dt = data["tasks"][d]
            same_group = group_id is not None and dt["mapping"] and dt["mapping"].get("group_id") == group_id
            if same_group and not whole:
                planned[d] = PlannedTask(d, planned[task_id].map_indexes)
            elif dt["mapping"] is not None and (whole or (dt["mapping"]["kind"] != "group" and _maps_over(dt, task_id))):
                planned[d] = PlannedTask(d, reexpand=not only_failed)
            else:
                planned[d] = PlannedTask(d)
    order = {t: i for i, t in enumerate(data["task_order"])}
    return ClearPlan(tasks=tuple(sorted(planned.values(), key=lambda t: order[t.task_id])), only_failed=only_failed)


def clear_planned(*, dag_run: DagRun, plan: ClearPlan) -> int:
    """Apply a plan from ``plan_clear``; returns how many instances were cleared."""
    data = dag_run.serialized_dag.dag_data()
    n = 0
    with transaction.atomic():
        DagRun.objects.select_for_update(no_key=True).filter(pk=dag_run.pk).first()
        for t in plan.tasks:
            if t.reexpand:
                n += _reexpand(dag_run, data, t.task_id)
                continue
            where = Q(task_id=t.task_id) if t.map_indexes is None else Q(task_id=t.task_id, map_index__in=t.map_indexes)
            n += _reset(dag_run, data, where & Q(state__in=FAILED_STATES) if plan.only_failed else where)
        if n:
            _reopen_run(dag_run)
        first = plan.tasks[0] if len(plan.tasks) == 1 else None
        index = first.map_indexes[0] if first and first.map_indexes and len(first.map_indexes) == 1 else None
        record(AuditEvent.CLEAR, dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=first.task_id if first else "",
               map_index=index, count=n, extra={"tasks": plan.describe(), "only_failed": plan.only_failed})
    return n


def set_dag_paused(*, dag_id: str, is_paused: bool) -> bool:
    """Pause or unpause a DAG; returns whether it changed. While paused, the scheduler creates no
    scheduled run and passes over none of its runs (runs/scheduling/steps.active_dag_run_ids)."""
    with transaction.atomic():
        changed = DagModel.objects.filter(dag_id=dag_id).exclude(is_paused=is_paused).update(is_paused=is_paused)
        if changed:
            record(AuditEvent.PAUSE if is_paused else AuditEvent.UNPAUSE, dag_id=dag_id)
            if not is_paused:
                transaction.on_commit(notify_scheduler)
    return bool(changed)


class VariableError(ValueError):
    pass


def _check_variable(key: str, value: Any) -> None:
    if not key or len(key) > 250:
        raise VariableError("key must be 1 to 250 characters")
    problem = json_problem(value)
    if problem:
        raise VariableError(f"value {problem}")


def create_variable(*, key: str, value: Any, description: str = "") -> Variable:
    """A new Variable; VariableError when the key is taken or the value cannot be stored."""
    _check_variable(key, value)
    try:
        with transaction.atomic():
            var = Variable.objects.create(key=key, val=value, description=description)
            # The key only: a value may be a secret, and every user reads the audit log.
            record(AuditEvent.VARIABLE_CREATE, extra={"key": key})
    except IntegrityError:  # the unique key: taken, perhaps a moment ago by someone else
        raise VariableError(f"A Variable {key!r} already exists") from None
    return var


def update_variable(var: Variable, *, value: Any = None, description: str | None = None, set_value: bool = True) -> Variable:
    """Change a Variable's value (unless ``set_value`` is false) and description (unless None)."""
    changed = []
    if set_value:
        _check_variable(var.key, value)
        changed.append("value")
        var.val = value
    if description is not None:
        changed.append("description")
        var.description = description
    with transaction.atomic():
        var.save(update_fields=["val", "description"])
        record(AuditEvent.VARIABLE_UPDATE, extra={"key": var.key, "fields": changed})
    return var


def delete_variable(var: Variable) -> None:
    with transaction.atomic():
        var.delete()
        record(AuditEvent.VARIABLE_DELETE, extra={"key": var.key})


