from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagsapp.dependencies import DependencyMixin
from dagsapp.ids import validate_id

if TYPE_CHECKING:
    from dagsapp.dag import DAG
    from dagsapp.expandinput import ExpandInput
    from dagsapp.taskmixin import Node
    from dagsapp.tolerance import Tolerance


class TaskGroup(DependencyMixin):
    """A named set of tasks: ids are prefixed ``group.task``; dependencies apply to its roots/leaves."""

    def __init__(
        self,
        group_id: str | None,
        *,
        prefix_group_id: bool = True,
        tooltip: str = "",
        dag: DAG | None = None,
        parent_group: TaskGroup | None = None,
        _root: bool = False,
    ) -> None:
        from dagsapp.dag import DagContext

        self.children: dict[str, Node | TaskGroup] = {}
        self.tooltip = tooltip
        self.prefix_group_id = prefix_group_id
        self.expand_input: ExpandInput | None = None
        # A mapped group's partial(max_failed_ratio=..., max_failed_count=...), over its indexes.
        self.tolerance: Tolerance | None = None
        if _root:
            self.dag, self.parent, self._group_id = dag, None, None
            return
        group_id = validate_id("TaskGroup", "group_id", group_id)
        self.dag = dag or DagContext.current()
        if self.dag is None:
            raise RuntimeError(f"TaskGroup {group_id!r} must be created inside a DAG")
        self.parent = parent_group or TaskGroupContext.current(self.dag)
        self._group_id = self.parent.child_id(group_id) if self.parent is not None else group_id
        validate_id("TaskGroup", "group_id", group_id, full_id=self._group_id)
        if self._group_id in self.dag.task_groups:
            raise ValueError(f"Task group id {self._group_id!r} has already been added to the DAG {self.dag.dag_id!r}")
        self.dag.task_groups[self._group_id] = self
        self.parent.add(self)

    @property
    def group_id(self) -> str | None:
        return self._group_id

    @property
    def is_root(self) -> bool:
        return self._group_id is None

    @property
    def is_mapped(self) -> bool:
        return self.expand_input is not None

    def mapped_ancestor(self) -> TaskGroup | None:
        group: TaskGroup | None = self
        while group is not None:
            if group.is_mapped:
                return group
            group = group.parent
        return None

    def mapped_chain(self) -> list[TaskGroup]:
        """The mapped groups this group is in, itself included, outermost first: one mapping level each."""
        chain: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            if group.is_mapped:
                chain.append(group)
            group = group.parent
        return chain[::-1]

    def child_id(self, label: str) -> str:
        if self._group_id and self.prefix_group_id:
            return f"{self._group_id}.{label}"
        if self.parent is not None:
            return self.parent.child_id(label)
        return label

    def add(self, child: Node | TaskGroup) -> None:
        key = child.group_id if isinstance(child, TaskGroup) else child.task_id
        assert key is not None
        self.children[key] = child

    def iter_tasks(self) -> list[Node]:
        out: list[Node] = []
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                out.extend(child.iter_tasks())
            else:
                out.append(child)
        return out

    def _roots(self) -> Sequence[Node]:
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.upstream_task_ids & ids)]

    def _leaves(self) -> Sequence[Node]:
        tasks = self.iter_tasks()
        ids = {t.task_id for t in tasks}
        return [t for t in tasks if not (t.downstream_task_ids & ids)]

    def __enter__(self) -> TaskGroup:
        TaskGroupContext.push(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        TaskGroupContext.pop()

    def __repr__(self) -> str:
        return f"<TaskGroup {self._group_id}>"


class TaskGroupContext:
    _stack: list[TaskGroup] = []

    @classmethod
    def push(cls, group: TaskGroup) -> None:
        cls._stack.append(group)

    @classmethod
    def pop(cls) -> None:
        cls._stack.pop()

    @classmethod
    def current(cls, dag: DAG) -> TaskGroup:
        for group in reversed(cls._stack):
            if group.dag is dag:
                return group
        return dag.task_group
