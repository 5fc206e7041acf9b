"""Readable names for mapped instances with ``map_index_template``.

- ``count_words`` maps over file names from an upstream task and is named
  ``{{ task.op_kwargs['filename'] }}``: the grid shows ``notes.txt`` instead of ``[1]``.
- ``stock`` maps over a literal dict, one instance per ``(key, value)`` pair, and is named
  ``{{ mapping.key }}``: the dict key (``apples``, ``pears``).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from dagsapp.sdk import dag, task

CONTENTS = {"readme.md": "read me first", "notes.txt": "two words", "todo.txt": "one"}


@dag(dag_id="example_map_index_template", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_map_index_template() -> None:
    @task
    def list_files() -> list[str]:
        return sorted(CONTENTS)

    @task(map_index_template="{{ task.op_kwargs['filename'] }}")
    def count_words(filename: str) -> int:
        return len(CONTENTS[filename].split())

    @task(map_index_template="{{ mapping.key }}")
    def stock(item: Any) -> str:
        fruit, count = item
        return f"{count} {fruit}"

    count_words.expand(filename=list_files())
    stock.expand(item={"apples": 3, "pears": 5})


example_map_index_template()
