"""The peers' benchmark in Prefect 3: the same 1,000-instance map, with ``.map`` and ``unmapped``.

Run with no PREFECT_API_URL, so Prefect starts its local (ephemeral) server for the flow run.
"""
from __future__ import annotations

import os
import time

from prefect import flow, task, unmapped

N = int(os.environ.get("BENCH_PEER_N", "1000"))


@task
def numbers() -> list[int]:
    return list(range(N))


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def total(values: list[int]) -> int:
    return sum(values)


@flow
def bench_peer_map() -> int:
    xs = numbers()
    return total(add.map(xs, unmapped(10)).result())


if __name__ == "__main__":
    t0 = time.perf_counter()
    result = bench_peer_map()
    assert result == sum(range(N)) + 10 * N, result
    print(f"BENCH_FLOW_SECONDS={time.perf_counter() - t0:.3f}")
