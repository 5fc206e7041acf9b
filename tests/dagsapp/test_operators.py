"""Running operators: BashOperator's exit codes and XCom, PythonOperator's context arguments."""

from __future__ import annotations

from typing import Any

import pytest

from dagsapp.exceptions import AirflowSkipException
from dagsapp.operators import BashOperator, EmptyOperator, PythonOperator


def _context(**extra: Any) -> dict[str, Any]:
    return {"dag_id": "d", "run_id": "manual__1", "map_index": 4, "ds": "2024-01-02", **extra}


class BashOperatorTests:
    def test_it_returns_the_last_line_of_stdout(self) -> None:
        op = BashOperator(task_id="b", bash_command="echo first; echo last")
        assert op.execute(_context()) == "last"

    def test_it_returns_none_without_output(self) -> None:
        assert BashOperator(task_id="b", bash_command="true").execute(_context()) is None

    @pytest.mark.parametrize(("options", "error", "match"), [
        pytest.param({"bash_command": "echo oops; exit 3"}, RuntimeError, "non-zero exit code 3", id="raises_on_a_non_zero_exit"),
        pytest.param({"bash_command": "exit 99"}, AirflowSkipException, "exit code 99", id="skips_on_exit_99"),
        pytest.param({"bash_command": "exit 99", "skip_on_exit_code": None}, RuntimeError, "non-zero exit code 99",
                     id="fails_on_exit_99_when_skipping_is_off"),
    ])
    def test_it_ends_a_failing_command_by_its_exit_code(self, options: dict[str, Any], error: type[Exception], match: str) -> None:
        op = BashOperator(task_id="b", **options)
        with pytest.raises(error, match=match):
            op.execute(_context())

    def test_it_exposes_the_context_in_the_environment(self) -> None:
        op = BashOperator(task_id="b", bash_command='echo "$AIRFLOW_CTX_DAG_ID $AIRFLOW_CTX_MAP_INDEX $GREETING"', env={"GREETING": "hi"})
        assert op.execute(_context()) == "d 4 hi"

    def test_it_rejects_an_empty_command(self) -> None:
        with pytest.raises(ValueError, match="bash_command must be a non-empty string"):
            BashOperator(task_id="b", bash_command="  ").execute(_context())


class PythonOperatorTests:
    def test_it_passes_context_keys_named_as_parameters(self) -> None:
        def f(a: int, ds: str, map_index: int) -> tuple[int, str, int]:
            return a, ds, map_index

        op = PythonOperator(task_id="p", python_callable=f, op_kwargs={"a": 1})
        assert op.execute(_context()) == (1, "2024-01-02", 4)

    def test_it_passes_only_the_named_keys(self) -> None:
        def f(ds: str) -> str:
            return ds

        assert PythonOperator(task_id="p", python_callable=f).execute(_context()) == "2024-01-02"

    def test_it_passes_the_whole_context_to_var_kwargs(self) -> None:
        received: dict[str, Any] = {}

        def f(a: int, **kwargs: Any) -> int:
            received.update(kwargs)
            return a

        op = PythonOperator(task_id="p", python_callable=f, op_kwargs={"a": 1})
        assert op.execute(_context()) == 1
        assert received == _context()

    def test_it_does_not_override_an_argument_with_the_context(self) -> None:
        def f(ds: str, run_id: str) -> tuple[str, str]:
            return ds, run_id

        op = PythonOperator(task_id="p", python_callable=f, op_args=["positional"], op_kwargs={"run_id": "mine"})
        assert op.execute(_context()) == ("positional", "mine")

    def test_it_rejects_a_callable_that_is_not(self) -> None:
        with pytest.raises(TypeError, match="python_callable must be callable, not 'str'"):
            PythonOperator(task_id="p", python_callable="print")  # type: ignore[arg-type]


class EmptyOperatorTests:
    def test_it_returns_nothing(self) -> None:
        assert EmptyOperator(task_id="e").execute(_context()) is None
