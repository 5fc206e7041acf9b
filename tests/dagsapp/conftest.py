"""A fake of the runtime's MappingResolver: task results, conf values and Variables held in dicts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dagsapp.xcom_arg import literal_item


class FakeResolver:
    """``results`` holds an unmapped task's whole result; ``mapped`` the per-index results of a
    task that produces many; ``refs`` the values of ``(kind, key)`` for ParamRef/VariableRef."""

    def __init__(
        self,
        *,
        results: dict[str, Any] | None = None,
        mapped: dict[str, list[Any]] | None = None,
        refs: dict[tuple[str, str], Any] | None = None,
        identities: dict[str, list[str | None]] | None = None,
    ) -> None:
        self.results = results or {}
        self.mapped = mapped or {}
        self.refs = refs or {}
        # task_id (or "task_id:consumer" for a map_key's) -> the identities its TaskMap recorded
        self.identities = identities or {}
        self.value_calls: list[tuple[str, bool, int | None]] = []

    def xcom_length(self, task_id: str, *, mapped: bool) -> int | None:
        if mapped:
            return len(self.mapped[task_id]) if task_id in self.mapped else None
        return len(self.results[task_id]) if task_id in self.results else None

    def xcom_value(self, task_id: str, *, mapped: bool, map_index: int | None = None) -> Any:
        self.value_calls.append((task_id, mapped, map_index))
        if mapped:
            values = self.mapped[task_id]
            return values if map_index is None else values[map_index]
        return self.results[task_id]

    def xcom_item(self, task_id: str, *, mapped: bool, index: int) -> tuple[Any, Any, Any]:
        if mapped:
            value = self.mapped[task_id][index]
            return index, value, value
        return literal_item(self.results[task_id], index)

    def ref_value(self, kind: str, key: str) -> Any:
        return self.refs[(kind, key)]

    def xcom_identities(self, task_id: str, *, mapped: bool, consumer: str) -> list[str | None] | None:
        return self.identities.get(f"{task_id}:{consumer}", self.identities.get(task_id))


@pytest.fixture
def make_resolver() -> Callable[..., FakeResolver]:
    return FakeResolver
