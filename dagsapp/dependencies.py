from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagsapp.taskmixin import Node


class DependencyMixin:
    """`>>` and `<<` between tasks, task groups, XComArgs and lists of them."""

    def _roots(self) -> Sequence[Node]:
        raise NotImplementedError

    def _leaves(self) -> Sequence[Node]:
        raise NotImplementedError

    def set_downstream(self, other: DependencyMixin | Iterable[DependencyMixin]) -> None:
        for o in _as_list(other):
            for leaf in self._leaves():
                for root in o._roots():
                    leaf._add_edge_to(root)

    def set_upstream(self, other: DependencyMixin | Iterable[DependencyMixin]) -> None:
        for o in _as_list(other):
            o.set_downstream(self)

    def __rshift__(self, other: Any) -> Any:
        self.set_downstream(other)
        return other

    def __lshift__(self, other: Any) -> Any:
        self.set_upstream(other)
        return other

    def __rrshift__(self, other: Any) -> DependencyMixin:
        # [a, b] >> self
        self.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> DependencyMixin:
        # [a, b] << self
        self.set_downstream(other)
        return self


def _as_list(other: Any) -> list[DependencyMixin]:
    if isinstance(other, DependencyMixin):
        return [other]
    if isinstance(other, Iterable):
        items = list(other)
        for item in items:
            if not isinstance(item, DependencyMixin):
                raise TypeError(f"cannot set a dependency on {type(item).__name__!r}: expected a task, task group or XComArg")
        return items
    raise TypeError(f"cannot set a dependency on {type(other).__name__!r}: expected a task, task group or XComArg")
