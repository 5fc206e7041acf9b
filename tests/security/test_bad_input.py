"""Bad DAG files, bad mapping results and bad trigger conf: a clear error where the user looks."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils.html import escape

from runs.cli import run_dag_run_inline
from runs.logs import read_log
from runs.models import DagImportError, DagModel, DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import DagRunError, create_dag_run, parse_conf
from tests.runs.factories import HEADER, make_run

GOOD = HEADER + """
@dag(dag_id="good", start_date=datetime(2024, 1, 1), schedule=None)
def good():
    EmptyOperator(task_id="a")
good()
"""
BROKEN = {
    "syntax": ("def broken(:\n", "SyntaxError"),
    "import": ("import a_module_that_does_not_exist\n", "ModuleNotFoundError"),
    "cycle": (HEADER + """
with DAG(dag_id="cyclic", start_date=datetime(2024, 1, 1), schedule=None):
    a = EmptyOperator(task_id="a")
    b = EmptyOperator(task_id="b")
    a >> b >> a
""", "ycl"),
    "duplicate_task": (HEADER + """
with DAG(dag_id="dupe_tasks", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="a")
    EmptyOperator(task_id="a")
""", "a"),
    # Ids outside Airflow's rule used to be stored, then broke the Grid and Graph (500) or every trigger.
    "group_slash": (HEADER + """from dagsapp.sdk import TaskGroup
with DAG(dag_id="group_slash", start_date=datetime(2024, 1, 1), schedule=None):
    with TaskGroup("a/b"):
        EmptyOperator(task_id="a")
""", "TaskGroup(): group_id 'a/b' may only contain"),
    "group_html": (HEADER + """from dagsapp.sdk import TaskGroup
with DAG(dag_id="group_html", start_date=datetime(2024, 1, 1), schedule=None):
    with TaskGroup("<B>bold</B>"):
        EmptyOperator(task_id="a")
""", "TaskGroup(): group_id '<B>bold</B>' may only contain"),
    "group_too_long": (HEADER + """from dagsapp.sdk import TaskGroup
with DAG(dag_id="group_too_long", start_date=datetime(2024, 1, 1), schedule=None):
    with TaskGroup("g" * 300):
        EmptyOperator(task_id="a")
""", "at most 250"),
}


@pytest.mark.django_db
class BadDagFileTests:
    @pytest.mark.parametrize("kind", sorted(BROKEN))
    def test_it_shows_the_error_keeps_other_dags_and_clears_when_fixed(self, kind: str, tmp_path: Path, operator_client: Client) -> None:
        source, expected = BROKEN[kind]
        (tmp_path / "good.py").write_text(GOOD)
        bad = tmp_path / "bad.py"
        bad.write_text(source)
        process_dags_folder(tmp_path)
        error = DagImportError.objects.get(filename=str(bad.resolve()))
        assert expected in error.stacktrace
        assert DagModel.objects.filter(dag_id="good", is_active=True).exists()
        page = operator_client.get("/").content.decode()
        assert "bad.py" in page and "good" in page

        bad.write_text(GOOD.replace('"good"', '"fixed"').replace("def good", "def fixed").replace("good()", "fixed()"))
        process_dags_folder(tmp_path)
        assert not DagImportError.objects.exists()
        assert DagModel.objects.filter(dag_id="fixed", is_active=True).exists()
        assert "bad.py" not in operator_client.get("/").content.decode()

    def test_it_reports_a_dag_id_defined_in_two_files_and_keeps_running_runs(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, GOOD[len(HEADER):], dag_id="good", name="good.py")
        (tmp_path / "copy.py").write_text(GOOD)
        process_dags_folder(tmp_path)
        errors = list(DagImportError.objects.values_list("filename", "stacktrace"))
        assert len(errors) == 1 and "good" in errors[0][1], errors
        assert run_dag_run_inline(DagRun.objects.get(pk=run.pk), timeout=30).state == "success"


MAPPING = """
@dag(dag_id="bad_mapping", start_date=datetime(2024, 1, 1), schedule=None)
def bad_mapping():
    @task
    def source():
        return VALUE

    @task
    def use(x=None, y=None):
        return x

    EXPAND


bad_mapping()
"""
BAD_RESULTS = {
    "string": ("'abc'", "use.expand(x=source())", "str"),
    "int": ("42", "use.expand(x=source())", "int"),
    "none": ("None", "use.expand(x=source())", "None"),
    "non_string_keys": ("{1: 'a'}", "use.expand(x=source())", "key"),
    "too_long": ("list(range(5000))", "use.expand(x=source())", "5000"),
    "kwargs_not_dicts": ("[1, 2]", "use.expand_kwargs(source())", "dict"),
    "kwargs_unknown_key": ("[{'nope': 1}]", "use.expand_kwargs(source())", "nope"),
}


@pytest.mark.django_db
class BadMappingTests:
    @pytest.mark.parametrize("case", sorted(BAD_RESULTS))
    def test_it_fails_with_the_reason_in_a_log(self, case: str, tmp_path: Path) -> None:
        value, expand, expected = BAD_RESULTS[case]
        run = make_run(tmp_path, MAPPING.replace("VALUE", value).replace("EXPAND", expand), dag_id="bad_mapping")
        run = run_dag_run_inline(run, timeout=30)
        assert run.state == "failed"
        logs = "".join(read_log(ti.pk, max(ti.try_number, 1))[0] for ti in TaskInstance.objects.filter(dag_run=run))
        assert expected in logs, logs

    def test_it_refuses_a_key_given_to_both_partial_and_expand_at_parse_time(self, tmp_path: Path) -> None:
        source = HEADER + MAPPING.replace("VALUE", "[1]").replace("EXPAND", "use.partial(x=1).expand(x=source())")
        (tmp_path / "dag.py").write_text(source)
        process_dags_folder(tmp_path)
        error = DagImportError.objects.get()
        assert "x" in error.stacktrace and ("partial" in error.stacktrace or "expand" in error.stacktrace)


# Conf that Python's json reads but PostgreSQL cannot store (or that overflows a stack on the way).
UNSTORABLE_CONF = [
    ('{"a": NaN}', "conf contains NaN, which JSON cannot store"),
    ('{"a": [Infinity]}', "conf contains Infinity, which JSON cannot store"),
    ('{"a": -Infinity}', "conf contains -Infinity, which JSON cannot store"),
    ('{"a": 1e999}', "conf contains Infinity, which JSON cannot store"),
    ('{"a": "\\ud800"}', "conf contains a lone surrogate '\\ud800', which is not valid Unicode text"),
    ('{"\\udfff": 1}', "conf contains a lone surrogate"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "conf is nested more than 500 levels deep"),
    ('{"a": ' + "[" * 600 + "]" * 600 + "}", "conf is nested more than 500 levels deep"),
    ('{"a": ' + "9" * 5000 + "}", "conf has a number of more than 4300 digits"),
]


@pytest.mark.django_db
class BadConfTests:
    @pytest.mark.parametrize(("conf", "expected"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                                     ('"text"', "JSON object"), ("42", "JSON object"),
                                                     ('{"a": "\\u0000"}', "NUL"), *UNSTORABLE_CONF])
    def test_it_refuses_bad_conf_with_a_clear_error(self, conf: str, expected: str, tmp_path: Path, operator_client: Client) -> None:
        (tmp_path / "good.py").write_text(GOOD)
        process_dags_folder(tmp_path)
        for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
            # The trigger page's form: the page again, the message beside the conf field.
            response = operator_client.post("/dags/good/trigger/", {"conf": conf}, **headers)
            assert response.status_code == 400
            assert escape(expected) in response.content.decode(), response.content.decode()[-2000:]
        assert not DagRun.objects.exists()

    @pytest.mark.parametrize(("conf", "expected"), UNSTORABLE_CONF)
    def test_it_refuses_unstorable_conf_on_the_command_line(self, conf: str, expected: str, tmp_path: Path) -> None:
        (tmp_path / "good.py").write_text(GOOD)
        process_dags_folder(tmp_path)
        with pytest.raises(CommandError) as info:
            call_command("dags", "trigger", "good", "--conf", conf, stdout=io.StringIO())
        assert expected in str(info.value)
        assert not DagRun.objects.exists()

    def test_it_refuses_unstorable_conf_given_to_create_dag_run(self, tmp_path: Path) -> None:
        (tmp_path / "good.py").write_text(GOOD)
        process_dags_folder(tmp_path)
        for conf in ({"a": float("nan")}, {"a": {"b": "\ud800"}}, {"a": "x\x00"}):
            with pytest.raises(DagRunError, match="^conf contains"):
                create_dag_run(dag_id="good", conf=conf)
        assert not DagRun.objects.exists()

    def test_it_keeps_a_big_but_storable_conf(self, tmp_path: Path) -> None:
        (tmp_path / "good.py").write_text(GOOD)
        process_dags_folder(tmp_path)
        conf = parse_conf('{"n": ' + "9" * 4000 + ', "deep": ' + "[" * 400 + "]" * 400 + ', "text": "\\ud83d\\ude00"}')
        run = create_dag_run(dag_id="good", conf=conf)
        run.refresh_from_db()
        assert run.conf == conf and run.conf["text"] == "\U0001f600"
