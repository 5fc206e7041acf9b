"""States in raw SQL come from the enums: renaming a state cannot leave a statement matching nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from runs.execution import execute
from runs.models import DagRunState, TaskInstanceState
from runs.models.xcom import RETURN_VALUE
from runs.sqltext import literal, literals

RUNS = Path(__file__).resolve().parents[2] / "runs"
STATES = sorted({*TaskInstanceState.values, *DagRunState.values})
QUOTED_STATE = re.compile("'(" + "|".join(STATES) + ")'")


def string_constants(path: Path) -> list[tuple[int, str]]:
    """Every string constant of a module (f-string parts included), comments left out."""
    tree = ast.parse(path.read_text())
    return [(node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]


class LiteralTests:
    def test_it_quotes_an_enum_member_by_its_value(self) -> None:
        assert literal(TaskInstanceState.UP_FOR_RETRY) == "'up_for_retry'"
        assert literal(RETURN_VALUE) == "'return_value'"

    def test_it_joins_several_for_an_in_list(self) -> None:
        assert literals(TaskInstanceState.QUEUED, TaskInstanceState.RUNNING) == "'queued', 'running'"

    @pytest.mark.parametrize("text", ["it's", "a b", "Queued", "", "x'; DROP TABLE runs_xcom; --"])
    def test_it_refuses_text_that_is_not_a_plain_word(self, text: str) -> None:
        with pytest.raises(ValueError, match="plain lower-case word"):
            literal(text)


class StatesInRawSqlTests:
    def test_it_finds_no_state_written_as_a_bare_sql_literal_in_runs(self) -> None:
        # Migrations are history and keep their literals; tests/runs/test_models.py checks them.
        found = [f"{path.relative_to(RUNS.parent)}:{line}: {QUOTED_STATE.search(text)[0]}"  # type: ignore[index]
                 for path in sorted(RUNS.rglob("*.py")) if "migrations" not in path.parts
                 for line, text in string_constants(path) if QUOTED_STATE.search(text)]
        assert found == []

    def test_it_would_notice_a_bare_state_literal(self) -> None:
        assert QUOTED_STATE.search("UPDATE runs_taskinstance SET state = 'running'")
        assert not QUOTED_STATE.search("UPDATE runs_taskinstance SET state = %(state)s")

    def test_it_writes_the_enum_values_into_the_hot_path_statements(self) -> None:
        S = TaskInstanceState
        assert f"SET state = '{S.RUNNING.value}'" in execute._CLAIM_SQL
        assert f"ti.state = '{S.QUEUED.value}'" in execute._CLAIM_SQL
        assert f"SET state = '{S.SUCCESS.value}'" in execute._COMMIT_SUCCESS_SQL
        assert f"AND state = '{S.RUNNING.value}' AND try_number" in execute._COMMIT_SUCCESS_SQL
        for state in execute.WAITING_STATES:
            assert f"s.state = '{state.value}'" in execute._COMMIT_SUCCESS_SQL
