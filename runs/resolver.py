"""The database side of mapping: lengths for expansion, single items and lazy sequences for workers."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from django.db import connection

from dagsapp.exceptions import MappingError
from dagsapp.expandinput import resolve_spec
from dagsapp.identity import DEFAULT_IDENTITIES, IDENTITY_LENGTH
from dagsapp.serialization import DagData, ExpandInputSpec
from dagsapp.xcom_arg import Item
from runs.models import DagRun, TaskInstance, TaskInstanceState, TaskMap, Variable, XCom
from runs.models.taskinstance import UNFINISHED_STATES, path_label
from runs.models.xcom import RETURN_VALUE
from runs.sqltext import literal

# Variables read by a run's expansions are frozen here, so every task of the run sees one value.
VARIABLE_SNAPSHOT_TASK = "__variables__"


class LazyXComSequence(Sequence[Any]):
    """All results of a mapped task, in map_index order, fetched only when read.

    ``len()`` is one COUNT; indexing fetches one row; iteration pages through by map_index, so a
    reduce over 100,000 results never holds them all in memory.
    """

    PAGE = 1000

    def __init__(self, dag_run_id: int, task_id: str, key: str = RETURN_VALUE) -> None:
        self._qs = XCom.objects.filter(dag_run_id=dag_run_id, task_id=task_id, key=key, map_index__gte=0)
        self._len: int | None = None

    def __len__(self) -> int:
        if self._len is None:
            self._len = self._qs.count()
        return self._len

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index < 0:
            raise IndexError("LazyXComSequence index out of range")
        row = self._qs.order_by("map_index").values_list("value", flat=True)[index : index + 1]
        values = list(row)
        if not values:
            raise IndexError("LazyXComSequence index out of range")
        return values[0]

    def __iter__(self) -> Iterator[Any]:
        last = -1
        while True:
            page = list(self._qs.filter(map_index__gt=last).order_by("map_index").values_list("map_index", "value")[: self.PAGE])
            for map_index, value in page:
                last = map_index
                yield value
            if len(page) < self.PAGE:
                return

    def __repr__(self) -> str:
        return f"LazyXComSequence(len={len(self)})"


def item_sql(index: str) -> str:
    """SQL for item ``index`` of a recorded result ``x.value`` (its TaskMap ``tm``), as JSON text:
    the list element, or for a dict the value of the key the TaskMap lists at that position."""
    return f"(CASE WHEN tm.keys IS NULL THEN x.value -> {index} ELSE x.value -> (tm.keys ->> {index}) END)::text"


# A result's TaskMap, and item %(i)s of that result when the instance knows its index (else NULL).
_TASK_MAP_SQL = (
    "SELECT tm.length, tm.keys::text, (SELECT " + item_sql("%(i)s::int") + " FROM runs_xcom x WHERE %(i)s::int IS NOT NULL"
    f" AND x.dag_run_id = tm.dag_run_id AND x.task_id = tm.task_id AND x.key = {literal(RETURN_VALUE)} AND x.map_index = -1)"
    " FROM runs_taskmap tm WHERE tm.dag_run_id = %(run)s AND tm.task_id = %(task)s AND tm.map_index = -1"
)


class TaskMapRow(NamedTuple):
    length: int
    keys: list[str] | None


class DbResolver:
    """Implements dagsapp's MappingResolver against one DagRun."""

    def __init__(self, dag_run: DagRun, data: DagData, *, prefetch_index: int | None = None,
                 path: list[int] | None = None) -> None:
        self.dag_run = dag_run
        self.data = data
        # Nested mapping: the asking instance's path of indexes (or the prefix being expanded),
        # and the arguments of the mapped groups it is in, once resolved.
        self.path: list[int] = list(path or [])
        self.group_args: dict[str, dict[str, Any]] = {}
        # One instance resolves a length and then an item of the same result: read its TaskMap once.
        self._task_maps: dict[str, TaskMapRow | None] = {}
        # The instance's own map_index: with one mapped keyword, the item it needs is item
        # map_index, so it is fetched with the length in the same query.
        self._prefetch_index = prefetch_index
        self._prefetched: dict[tuple[str, int], Any] = {}

    def preload(self, task_id: str, task_map: TaskMapRow, index: int, item: Any) -> None:
        """What a batch prefetch already read for this instance: no query needed to resolve it."""
        self._task_maps[task_id] = task_map
        self._prefetched[task_id, index] = item

    def _task_map(self, task_id: str) -> TaskMapRow | None:
        if task_id not in self._task_maps:
            # Plain SQL: read once per mapped instance, where the ORM's overhead is most of the cost.
            i = self._prefetch_index if self._prefetch_index is not None and self._prefetch_index >= 0 else None
            with connection.cursor() as cur:
                cur.execute(_TASK_MAP_SQL, {"i": i, "run": self.dag_run.pk, "task": task_id})
                row = cur.fetchone()
            self._task_maps[task_id] = TaskMapRow(row[0], json.loads(row[1]) if row[1] is not None else None) if row else None
            if row is not None and i is not None and i < row[0]:
                self._prefetched[task_id, i] = json.loads(row[2]) if row[2] is not None else None
        return self._task_maps[task_id]

    # lengths (scheduler)
    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None:
        if not mapped:
            tm = self._task_map(task_id)
            if tm is not None:
                return tm.length
            self._task_maps.pop(task_id, None)  # not there yet: ask again next time
            state = TaskInstance.objects.filter(dag_run=self.dag_run, task_id=task_id, map_index=-1).values_list("state", flat=True).first()
            if state != TaskInstanceState.SUCCESS:
                return None
            # The success may have committed between the two reads above (each statement sees
            # its own snapshot); the TaskMap commits with it, so read it once more before failing.
            tm = self._task_map(task_id)
            if tm is None:
                raise MappingError(f"task {task_id!r} succeeded but recorded no length to map over; clear it to run it again")
            return tm.length
        unfinished = TaskInstance.objects.filter(dag_run=self.dag_run, task_id=task_id, state__in=UNFINISHED_STATES).exists()
        if unfinished:
            return None
        return XCom.objects.filter(dag_run=self.dag_run, task_id=task_id, key=RETURN_VALUE, map_index__gte=0).count()

    def ref_value(self, kind: str, key: str) -> Any:
        if kind == "param":
            if key in (self.dag_run.conf or {}):
                return self.dag_run.conf[key]
            params = self.data.get("params") or {}
            if key in params:
                return params[key]
            raise MappingError(f"ParamRef({key!r}): the run's conf has no {key!r} and the DAG has no param {key!r}")
        if kind == "variable":
            snap = XCom.objects.filter(dag_run=self.dag_run, task_id=VARIABLE_SNAPSHOT_TASK, map_index=-1, key=key).first()
            if snap is not None:
                return snap.value
            var = Variable.objects.filter(key=key).first()
            if var is None:
                raise MappingError(f"VariableRef({key!r}): no Variable named {key!r} exists")
            XCom.objects.get_or_create(dag_run=self.dag_run, task_id=VARIABLE_SNAPSHOT_TASK, map_index=-1, key=key,
                                       defaults={"value": var.val})
            return XCom.objects.get(dag_run=self.dag_run, task_id=VARIABLE_SNAPSHOT_TASK, map_index=-1, key=key).value
        raise MappingError(f"unknown reference kind {kind!r}")

    # identities (scheduler, dagsapp.identity)
    def xcom_identities(self, task_id: str, *, mapped: bool, consumer: str) -> list[str | None] | None:
        if mapped:
            # One item per instance of a mapped upstream: nobody recorded its identity, so it is
            # hashed here, in SQL (md5 of PostgreSQL's canonical jsonb text), in one query.
            with connection.cursor() as cur:
                cur.execute(
                    f"SELECT left(md5(value::text), {IDENTITY_LENGTH}) FROM runs_xcom WHERE dag_run_id = %s AND task_id = %s"
                    " AND key = %s AND map_index >= 0 ORDER BY map_index",
                    [self.dag_run.pk, task_id, RETURN_VALUE])
                return [r[0] for r in cur.fetchall()]
        row = TaskMap.objects.filter(dag_run=self.dag_run, task_id=task_id, map_index=-1).values_list("identities", "keys").first()
        if row is None:
            return None
        identities, keys = row
        identities = identities or {}
        if consumer in identities:
            return list(identities[consumer])
        if DEFAULT_IDENTITIES in identities:
            return list(identities[DEFAULT_IDENTITIES])
        return list(keys) if keys is not None else None

    # values (worker)
    def xcom_value(self, task_id: str, *, mapped: bool, map_index: int | None = None) -> Any:
        if mapped and map_index is None:
            if len(task_levels(self.data, task_id)) > 1:
                return PathXComSequence(self.dag_run.pk, task_id, [])  # in path order, not creation order
            return LazyXComSequence(self.dag_run.pk, task_id)
        row = XCom.objects.filter(dag_run=self.dag_run, task_id=task_id, key=RETURN_VALUE,
                                  map_index=-1 if map_index is None else map_index).values_list("value", flat=True).first()
        return row

    def xcom_keys(self, task_id: str) -> list[str] | None:
        """The keys of an unmapped task's dict result, in its order (None for a list)."""
        tm = self._task_map(task_id)
        return list(tm.keys) if tm is not None and tm.keys is not None else None

    def xcom_item(self, task_id: str, *, mapped: bool, index: int) -> Item:
        if mapped:
            values = self.xcom_value(task_id, mapped=True)
            value = values[index]
            return index, value, value
        tm = self._task_map(task_id)
        if tm is None:
            raise MappingError(f"the result of {task_id!r} has no recorded length")
        key: int | str = tm.keys[index] if tm.keys is not None else index
        if (task_id, index) in self._prefetched:
            value = self._prefetched[task_id, index]
            return (key, (key, value), value) if tm.keys is not None else (key, value, value)
        # Read one element in SQL (jsonb -> key) instead of loading a 100,000-item list per instance.
        with connection.cursor() as cur:
            cur.execute(
                "SELECT (value -> %s)::text FROM runs_xcom WHERE dag_run_id = %s AND task_id = %s AND key = %s AND map_index = -1",
                [key, self.dag_run.pk, task_id, RETURN_VALUE],
            )
            row = cur.fetchone()
        if row is None:
            raise MappingError(f"the result of {task_id!r} is missing")
        value = json.loads(row[0]) if row[0] is not None else None
        if tm.keys is not None:
            return key, (key, value), value
        return key, value, value

    # nested mapping (dagsapp.xcom_arg.NestedResolver)
    def instance_at(self, task_id: str, prefix: list[int]) -> tuple[int, str] | None:
        """(map_index, state) of the task's one instance at this path."""
        qs = TaskInstance.objects.filter(dag_run=self.dag_run, task_id=task_id)
        if len(task_levels(self.data, task_id)) > 1:
            qs = qs.filter(map_path=prefix)
        else:
            qs = qs.filter(map_index=prefix[0], map_path__isnull=True)
        row = qs.values_list("map_index", "state").first()
        return (row[0], row[1]) if row else None

    def _whole_task_map(self, task_id: str, scope: int) -> tuple[int, TaskMap] | None:
        found = self.instance_at(task_id, self.path[:scope])
        if found is None or found[1] != TaskInstanceState.SUCCESS:
            return None
        tm = TaskMap.objects.filter(dag_run=self.dag_run, task_id=task_id, map_index=found[0]).first()
        if tm is None:
            raise MappingError(f"task {task_id!r} succeeded at {prefix_label(self.path[:scope])} but recorded no length to map over; "
                               "clear it to run it again")
        return found[0], tm

    def scoped_length(self, task_id: str, *, whole: bool, scope: int) -> int | None:
        if whole:
            found = self._whole_task_map(task_id, scope)
            return found[1].length if found is not None else None
        prefix = self.path[:scope]
        with connection.cursor() as cur:
            cur.execute(_UNDER_PREFIX_UNFINISHED_SQL, {"run": self.dag_run.pk, "task": task_id, "prefix": prefix, "c": scope})
            if cur.fetchone() is not None:
                return None
        return len(_results_under(self.dag_run.pk, task_id, prefix))

    def scoped_item(self, task_id: str, *, whole: bool, scope: int, index: int) -> Item:
        if not whole:
            value = PathXComSequence(self.dag_run.pk, task_id, self.path[:scope])[index]
            return index, value, value
        found = self._whole_task_map(task_id, scope)
        if found is None:
            raise MappingError(f"the result of {task_id!r} at {prefix_label(self.path[:scope])} has no recorded length")
        map_index, tm = found
        keys = tm.keys
        key: int | str = keys[index] if keys is not None else index
        with connection.cursor() as cur:
            cur.execute("SELECT (value -> %s)::text FROM runs_xcom WHERE dag_run_id = %s AND task_id = %s AND key = %s AND map_index = %s",
                        [key, self.dag_run.pk, task_id, RETURN_VALUE, map_index])
            row = cur.fetchone()
        value = json.loads(row[0]) if row is not None and row[0] is not None else None
        return (key, (key, value), value) if keys is not None else (key, value, value)

    def scoped_value(self, task_id: str, *, whole: bool, scope: int) -> Any:
        prefix = self.path[:scope]
        if not whole:
            return PathXComSequence(self.dag_run.pk, task_id, prefix)
        found = self.instance_at(task_id, prefix)
        if found is None:
            return None
        return XCom.objects.filter(dag_run=self.dag_run, task_id=task_id, key=RETURN_VALUE, map_index=found[0]).values_list(
            "value", flat=True).first()

    def group_arg(self, group_id: str, key: str) -> Any:
        if group_id not in self.group_args:
            position, spec = group_level(self.data, group_id)
            if len(self.path) <= position:
                raise MappingError(f"the argument {key!r} of the mapped task group {group_id!r} is not known above its own level")
            outer = DbResolver(self.dag_run, self.data, path=self.path[:position])
            outer.group_args = self.group_args
            self.group_args[group_id] = resolve_spec(spec, outer, self.path[position]).kwargs
        args = self.group_args[group_id]
        if key not in args:
            raise MappingError(f"the mapped task group {group_id!r} has no argument {key!r}")
        return args[key]


def prefix_label(path: list[int]) -> str:
    return path_label(path) or "the top level"


def task_levels(data: DagData, task_id: str) -> list[str]:
    """A task's mapping level ids, outermost first (stored for DAGs with nested mapping)."""
    task = data["tasks"].get(task_id)
    if task is None or task["mapping"] is None:
        return []
    if "levels" in task:
        return [lv["id"] for lv in task["levels"]]
    mapping = task["mapping"]
    return [mapping.get("group_id", task_id)] if mapping["kind"] == "group" else [task_id]


def group_level(data: DagData, group_id: str) -> tuple[int, ExpandInputSpec]:
    """Where a mapped group sits among the mapping levels of its tasks, and its scoped input."""
    for task in data["tasks"].values():
        for position, level in enumerate(task.get("levels", [])):
            if level["id"] == group_id and level["kind"] == "group":
                return position, level["input"]
    raise MappingError(f"no mapped task group {group_id!r} in this DAG")


# An instance's path as SQL: its map_path, or [map_index] for a task mapped one level deep, or []
# for an unexpanded -1 placeholder (which stands for every path).
def path_sql(alias: str) -> str:
    return (f"COALESCE({alias}.map_path, CASE WHEN {alias}.map_index >= 0 THEN ARRAY[{alias}.map_index] "
            "ELSE '{}'::int[] END)")


# Whether any instance of the task that is, or may become, one under the prefix is unfinished: its
# instances under it, and placeholders of a shorter path that covers it.
_UNDER_PREFIX_UNFINISHED_SQL = f"""
SELECT 1 FROM runs_taskinstance t
WHERE t.dag_run_id = %(run)s AND t.task_id = %(task)s AND t.state IN ({", ".join(literal(s) for s in sorted(UNFINISHED_STATES))})
  AND ({path_sql("t")})[1:least(cardinality({path_sql("t")}), %(c)s)] = (%(prefix)s::int[])[1:least(cardinality({path_sql("t")}), %(c)s)]
LIMIT 1
"""

# The map_index of each result under a prefix, in path order.
_RESULTS_UNDER_SQL = f"""
SELECT t.map_index FROM runs_taskinstance t
JOIN runs_xcom x ON x.dag_run_id = t.dag_run_id AND x.task_id = t.task_id AND x.map_index = t.map_index AND x.key = {literal(RETURN_VALUE)}
WHERE t.dag_run_id = %(run)s AND t.task_id = %(task)s AND t.map_index >= 0 AND t.map_path[1:%(c)s] = %(prefix)s::int[]
ORDER BY t.map_path
"""


def _results_under(dag_run_id: int, task_id: str, prefix: list[int]) -> list[int]:
    with connection.cursor() as cur:
        cur.execute(_RESULTS_UNDER_SQL, {"run": dag_run_id, "task": task_id, "prefix": prefix, "c": len(prefix)})
        return [r[0] for r in cur.fetchall()]


class PathXComSequence(Sequence[Any]):
    """The results of a nested-mapped task under one path prefix, in path order, read in pages
    (``LazyXComSequence`` for the instances of one outer index)."""

    PAGE = 1000

    def __init__(self, dag_run_id: int, task_id: str, prefix: list[int]) -> None:
        self._run, self._task = dag_run_id, task_id
        self._indexes = _results_under(dag_run_id, task_id, prefix)

    def __len__(self) -> int:
        return len(self._indexes)

    def _values(self, indexes: list[int]) -> list[Any]:
        rows = dict(XCom.objects.filter(dag_run_id=self._run, task_id=self._task, key=RETURN_VALUE, map_index__in=indexes)
                    .values_list("map_index", "value"))
        return [rows.get(i) for i in indexes]

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        if isinstance(index, slice):
            return self._values(self._indexes[index])
        return self._values([self._indexes[index]])[0]

    def __iter__(self) -> Iterator[Any]:
        for start in range(0, len(self._indexes), self.PAGE):
            yield from self._values(self._indexes[start : start + self.PAGE])

    def __repr__(self) -> str:
        return f"PathXComSequence(len={len(self)})"
