from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dagsapp.dependencies import DependencyMixin

if TYPE_CHECKING:
    from dagsapp.dag import DAG
    from dagsapp.taskgroup import TaskGroup


class Node(DependencyMixin):
    """A task in the DAG graph: a plain operator or a mapped one."""

    task_id: str
    dag: DAG | None
    task_group: TaskGroup | None

    def _init_node(self) -> None:
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()

    def _roots(self) -> Sequence[Node]:
        return [self]

    def _leaves(self) -> Sequence[Node]:
        return [self]

    def _add_edge_to(self, other: Node) -> None:
        if self.dag is not None and other.dag is not None and self.dag is not other.dag:
            raise ValueError(f"Tried to set a dependency between tasks of different DAGs: {self.task_id!r} and {other.task_id!r}")
        self.downstream_task_ids.add(other.task_id)
        other.upstream_task_ids.add(self.task_id)

    @property
    def mapped_group(self) -> TaskGroup | None:
        """The innermost mapped task group this task belongs to, if any."""
        group = self.task_group
        while group is not None:
            if group.is_mapped:
                return group
            group = group.parent
        return None

    @property
    def is_mapped(self) -> bool:
        return False

    def mapping_levels(self) -> list[str]:
        """One id per dimension this task is mapped over, outermost first: each mapped task group
        it is in, then the task itself if it expands. An instance's path has one index per level."""
        chain = self.task_group.mapped_chain() if self.task_group is not None else []
        levels = [str(g.group_id) for g in chain]
        return [*levels, self.task_id] if self.is_mapped else levels

    @property
    def produces_many(self) -> bool:
        """True when the task runs as several indexed instances (mapped itself or in a mapped group)."""
        return self.is_mapped or self.mapped_group is not None

    @property
    def output(self):  # type: ignore[no-untyped-def]
        from dagsapp.xcom_arg import PlainXComArg

        return PlainXComArg(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.task_id}>"
