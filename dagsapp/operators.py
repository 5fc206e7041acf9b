from __future__ import annotations

import inspect
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dagsapp.baseoperator import BaseOperator
from dagsapp.context import Context
from dagsapp.exceptions import AirflowSkipException


class EmptyOperator(BaseOperator):
    """Does nothing; the scheduler still runs it so trigger rules and Grid states behave as usual."""

    ui_color = "#e8f7e4"

    def execute(self, context: Context) -> None:
        return None


class PythonOperator(BaseOperator):
    template_fields = ("templates_dict", "op_args", "op_kwargs")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError(f"PythonOperator: python_callable must be callable, not {type(python_callable).__name__!r}")
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict

    def execute(self, context: Context) -> Any:
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        return self.python_callable(*self.op_args, **context_kwargs(self.python_callable, self.op_args, self.op_kwargs, context))


_signatures: dict[Callable[..., Any], list[inspect.Parameter]] = {}


def _parameters(func: Callable[..., Any]) -> list[inspect.Parameter]:
    """The callable's parameters, read once per callable (a worker calls it for every instance)."""
    try:
        return _signatures[func]
    except (KeyError, TypeError):  # TypeError: an unhashable callable, read every time
        params = list(inspect.signature(func).parameters.values())
    try:
        if len(_signatures) > 1024:
            _signatures.clear()
        _signatures[func] = params
    except TypeError:
        pass
    return params


def context_kwargs(func: Callable[..., Any], op_args: Sequence[Any], op_kwargs: Mapping[str, Any], context: Context) -> dict[str, Any]:
    """Like Airflow: a callable gets the whole context through **kwargs, else only the keys it names."""
    params = _parameters(func)
    kwargs = dict(op_kwargs)
    if any(p.kind is p.VAR_KEYWORD for p in params):
        for name, value in context.items():
            kwargs.setdefault(name, value)
        return kwargs
    positional = {p.name for p in params[: len(op_args)]}
    for p in params:
        if p.name in context and p.name not in kwargs and p.name not in positional and p.kind is not p.VAR_POSITIONAL:
            kwargs[p.name] = context[p.name]
    return kwargs


class DecoratedPythonOperator(PythonOperator):
    """The operator behind ``@task``."""


class BashOperator(BaseOperator):
    """Runs ``bash_command``; the last line of stdout is its XCom. Exit code 99 skips the task."""

    template_fields = ("bash_command", "env", "cwd")
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"

    def __init__(
        self,
        *,
        bash_command: str,
        env: dict[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | None = 99,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.append_env = append_env
        self.cwd = cwd
        self.skip_on_exit_code = skip_on_exit_code

    def execute(self, context: Context) -> str | None:
        if not isinstance(self.bash_command, str) or not self.bash_command.strip():
            raise ValueError(f"BashOperator {self.task_id!r}: bash_command must be a non-empty string, not {self.bash_command!r}")
        env = dict(os.environ) if self.env is None or self.append_env else {}
        env.update({k: str(v) for k, v in (self.env or {}).items()})
        env.update({"AIRFLOW_CTX_DAG_ID": str(context.get("dag_id", "")), "AIRFLOW_CTX_TASK_ID": self.task_id,
                    "AIRFLOW_CTX_RUN_ID": str(context.get("run_id", "")), "AIRFLOW_CTX_MAP_INDEX": str(context.get("map_index", -1))})
        with tempfile.TemporaryDirectory(prefix="dagsapp-bash-") as tmp:
            proc = subprocess.Popen(
                ["bash", "-c", self.bash_command], cwd=self.cwd or tmp, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            )
            last = None
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    line = line.rstrip("\n")
                    print(line, flush=True)
                    last = line
                proc.wait()
            except BaseException:
                os.killpg(proc.pid, signal.SIGTERM)
                raise
        if self.skip_on_exit_code is not None and proc.returncode == self.skip_on_exit_code:
            raise AirflowSkipException(f"Bash command returned exit code {proc.returncode}. Skipping.")
        if proc.returncode != 0:
            raise RuntimeError(f"Bash command failed. The command returned a non-zero exit code {proc.returncode}.")
        sys.stdout.flush()
        return last
