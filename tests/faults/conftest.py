"""Fixtures of the fault-injection suite: private servers, never the shared embedded ones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.faults.harness import FaultCluster, Stack


@pytest.fixture(scope="session")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    cluster = FaultCluster(tmp_path_factory.mktemp("faults"))
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def make_stack(fault_cluster: FaultCluster, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """``make_stack(**env)``: a fresh database and Redis; every process is stopped at teardown and,
    on a failing test, their output is printed."""
    stacks: list[Stack] = []
    with ExitStack() as exits:
        def make(**env: str) -> Stack:
            stack = exits.enter_context(fault_cluster.stack(tmp_path / f"stack{len(stacks)}", **env))
            stacks.append(stack)
            return stack

        yield make
        for stack in stacks:
            print(stack.report())
