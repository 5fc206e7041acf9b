"""``manage.py dags``: every example DAG run to its end by ``dags test``, ``list``, exit codes, bad input.

Transactional: ``dags test`` runs instances in this process, and their log writer thread stores
chunks through its own connection, which must see the committed instance rows.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from runs.execution.execute import execute_task_instance
from runs.logs import read_log
from runs.models import DagImportError, DagModel, DagRun, TaskInstance, Variable, XCom
from tests.runs.factories import write_dag

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLE_DAG_IDS = [
    "example_add", "example_bash_mapped", "example_conf_and_params", "example_cross_product", "example_elt",
    "example_empty_expansion", "example_expand_kwargs", "example_hyperparameter_search", "example_map_index_template",
    "example_item_identity", "example_mapped_task_group", "example_retry_one_index", "example_tolerated_failures",
]


def dags_test(dag_id: str, *args: str, expect_exit: int | None = None) -> dict[str, Any]:
    """``dags test <dag_id> --json``: the printed summary. A failed run exits 1 after printing it."""
    out = io.StringIO()
    if expect_exit is None:
        call_command("dags", "test", dag_id, "--json", *args, stdout=out)
    else:
        with pytest.raises(SystemExit) as exc:
            call_command("dags", "test", dag_id, "--json", *args, stdout=out)
        assert exc.value.code == expect_exit
    return json.loads(out.getvalue())


def instances(summary: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [t for t in summary["task_instances"] if t["task_id"] == task_id]


def values(summary: dict[str, Any], task_id: str) -> list[Any]:
    """One task's return values in map_index order."""
    return [t["return_value"] for t in instances(summary, task_id)]


def field(summary: dict[str, Any], task_id: str, key: str) -> list[Any]:
    return [t[key] for t in instances(summary, task_id)]


def task_instance(summary: dict[str, Any], task_id: str, map_index: int = -1) -> TaskInstance:
    return TaskInstance.objects.get(dag_run__dag_id=summary["dag_id"], dag_run__run_id=summary["run_id"],
                                    task_id=task_id, map_index=map_index)


class ExampleDagsTests:
    def test_it_lists_every_example_without_import_errors(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        call_command("dags", "list", stdout=out, stderr=err)
        listed = {line.split()[0] for line in out.getvalue().splitlines()[1:]}
        assert set(EXAMPLE_DAG_IDS) <= listed
        assert err.getvalue() == ""
        assert not DagImportError.objects.filter(filename__startswith=str(settings.DAGS_FOLDER)).exists()

    def test_it_prices_orders_identified_by_their_map_key(self) -> None:
        s = dags_test("example_item_identity")
        assert s["state"] == "success"
        assert values(s, "price") == [20, 10, 50]
        assert values(s, "total") == [80]
        run = DagRun.objects.get(dag_id="example_item_identity", run_id=s["run_id"])
        assert list(TaskInstance.objects.filter(dag_run=run, task_id="price").order_by("map_index")
                    .values_list("item_identity", flat=True)) == ["A-1:2", "B-7:1", "C-3:5"]

    def test_it_adds_ten_to_each_number_and_sums(self) -> None:
        s = dags_test("example_add")
        assert s["state"] == "success"
        assert field(s, "add", "map_index") == [0, 1, 2]
        assert values(s, "add") == [11, 12, 13]
        assert values(s, "total") == [36]

    def test_it_maps_over_the_cross_product_in_itertools_order(self) -> None:
        s = dags_test("example_cross_product")
        assert s["state"] == "success"
        # (2,5) (2,10) (4,5) (4,10) (8,5) (8,10): the last keyword varies fastest.
        assert values(s, "add") == [7, 12, 9, 14, 13, 18]
        assert values(s, "total") == [73]
        assert task_instance(s, "add", 3).rendered_fields["mapped_kwargs"] == {"x": 4, "y": 10}

    def test_it_expands_kwargs_and_zips_maps_and_concats(self) -> None:
        s = dags_test("example_expand_kwargs")
        assert s["state"] == "success"
        assert values(s, "send_email") == ["Report -> ada@example.com", "Invoice -> grace@example.com"]
        assert values(s, "copy_file") == ["a.csv => archive/a.csv", "b.csv => archive/b.csv", "c.csv => archive/c.csv"]
        assert values(s, "multiply") == [10, 40, 90]
        assert values(s, "total") == [140]
        assert values(s, "multiply_kwargs") == [10, 40, 90]
        assert task_instance(s, "multiply_kwargs", 1).rendered_fields["mapped_kwargs"] == {"a": 2, "b": 20}
        assert values(s, "describe") == ["value=1", "value=2", "value=3", "value=10", "value=20", "value=30"]

    def test_it_maps_a_bash_operator_and_renders_templates_per_instance(self) -> None:
        s = dags_test("example_bash_mapped")
        assert s["state"] == "success"
        ds = DagRun.objects.get(run_id=s["run_id"]).logical_date.strftime("%Y-%m-%d")
        assert values(s, "run_cmd") == ["hello", "42", f"index 2 of run day {ds}"]
        assert values(s, "collect") == [["hello", "42", f"index 2 of run day {ds}"]]
        rendered = task_instance(s, "run_cmd", 2).rendered_fields["fields"]["bash_command"]
        assert f"index 2 of run day {ds}" in rendered and "{{" not in rendered
        log, _ = read_log(task_instance(s, "run_cmd", 2).pk, 1)
        assert "starting" in log

    def test_it_loads_each_file_into_postgresql_and_cleans_up(self) -> None:
        s = dags_test("example_elt")
        assert s["state"] == "success"
        files = values(s, "extract")[0]
        assert [Path(f).name for f in files] == ["store_north.csv", "store_south.csv", "store_web.csv"]
        assert Path(files[0]).is_relative_to(Path(tempfile.gettempdir()) / "dagsapp_elt")
        assert field(s, "load", "rendered_map_index") == ["store_north.csv", "store_south.csv", "store_web.csv"]
        assert values(s, "load") == [2, 3, 2]
        assert values(s, "transform") == [{"rows": 7, "by_region": {"north": 210, "south": 275, "web": 300}}]
        with connection.cursor() as cur:
            cur.execute("SELECT count(*), sum(amount) FROM elt_sales_raw WHERE run_id = %s", [s["run_id"]])
            assert cur.fetchone() == (7, 785)
        assert field(s, "cleanup", "state") == ["success"]
        assert not Path(values(s, "cleanup")[0]).exists()

    def test_it_does_not_load_a_file_twice_when_load_runs_again(self) -> None:
        s = dags_test("example_elt")
        run = DagRun.objects.get(run_id=s["run_id"])
        # Run one load instance again by hand, with its file back in place: still 7 rows.
        folder = Path(values(s, "cleanup")[0])
        folder.mkdir(parents=True)
        (folder / "store_south.csv").write_text("region,amount\nsouth,200\nsouth,50\nsouth,25\n")
        load = task_instance(s, "load", 1)
        TaskInstance.objects.filter(pk=load.pk).update(state="queued", try_number=2)
        try:
            assert execute_task_instance(load.pk) == "success"
        finally:
            (folder / "store_south.csv").unlink()
            folder.rmdir()
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM elt_sales_raw WHERE run_id = %s", [run.run_id])
            assert cur.fetchone() == (7,)

    def test_it_names_grid_instances_and_publishes_the_best(self) -> None:
        s = dags_test("example_hyperparameter_search")
        assert s["state"] == "success"
        assert field(s, "train", "rendered_map_index") == [
            f"lr={lr} depth={d}" for lr in (0.01, 0.1, 0.3) for d in (2, 4, 8)
        ]
        best = {"learning_rate": 0.1, "depth": 4, "score": 1.0}
        assert values(s, "train")[4] == best
        assert values(s, "pick_best") == [best]
        pushed = XCom.objects.get(dag_run__run_id=s["run_id"], task_id="pick_best", map_index=-1, key="best")
        assert pushed.value == best

    def test_it_skips_an_empty_expansion_and_runs_none_failed_downstream(self) -> None:
        s = dags_test("example_empty_expansion")
        assert s["state"] == "success"
        assert values(s, "find_files") == [[]]
        # No instance was created: the placeholder itself is skipped, never tried.
        assert [(t["map_index"], t["state"], t["try_number"]) for t in instances(s, "process")] == [(-1, "skipped", 0)]
        assert field(s, "summarize", "state") == ["skipped"]
        assert field(s, "report", "state") == ["success"]
        assert values(s, "report") == ["no failures"]

    def test_it_runs_a_mapped_task_group_index_by_index(self) -> None:
        s = dags_test("example_mapped_task_group")
        assert s["state"] == "success"
        # Index i of each task in the group sees index i of the task before it, never the whole list.
        assert [v["city"] for v in values(s, "forecast.fetch")] == ["oslo", "lima", "cairo"]
        assert [v["celsius"] for v in values(s, "forecast.convert")] == [5, 20, 35]
        assert values(s, "forecast.label") == ["oslo: 5 C", "lima: 20 C", "cairo: 35 C"]
        assert values(s, "hottest") == ["cairo: 35 C"]

    def test_it_renders_map_index_template_names(self) -> None:
        s = dags_test("example_map_index_template")
        assert s["state"] == "success"
        assert field(s, "count_words", "rendered_map_index") == ["notes.txt", "readme.md", "todo.txt"]
        assert values(s, "count_words") == [2, 3, 1]
        assert field(s, "stock", "rendered_map_index") == ["apples", "pears"]
        assert values(s, "stock") == ["3 apples", "5 pears"]

    def test_it_tolerates_failures_and_reduces_over_the_successes(self) -> None:
        s = dags_test("example_tolerated_failures")
        assert s["state"] == "success"
        assert field(s, "fetch", "state").count("failed") == 2
        assert values(s, "count_words") == [{"pages": 18, "words": 1900}]
        assert values(s, "report") == [30]

    def test_it_retries_only_the_failing_index(self) -> None:
        s = dags_test("example_retry_one_index")
        assert s["state"] == "success"
        assert field(s, "flaky", "state") == ["success"] * 5
        assert field(s, "flaky", "try_number") == [1, 1, 2, 1, 1]
        assert values(s, "total") == [0 + 1 + 4 + 9 + 16]
        flaky = task_instance(s, "flaky", 2)
        first, _ = read_log(flaky.pk, 1)
        second, _ = read_log(flaky.pk, 2)
        assert "simulated transient failure on try 1" in first and "UP_FOR_RETRY" in first
        assert "item 2 ok on try 2" in second

    def test_it_maps_over_a_param_default(self) -> None:
        s = dags_test("example_conf_and_params")
        assert values(s, "double") == [2, 4, 6]
        assert values(s, "total") == [12]

    def test_it_maps_over_a_param_from_conf(self) -> None:
        s = dags_test("example_conf_and_params", "--conf", '{"numbers": [5, 6]}')
        assert s["state"] == "success"
        assert values(s, "double") == [10, 12]
        assert values(s, "total") == [22]


VARIABLE_DAG = """
@task
def visit(region):
    return f"visited {region}"

with DAG("var_regions") as the_dag:
    visit.expand(region=VariableRef("regions"))
"""

FAILING_DAG = """
@task
def ok():
    return [1]

@task
def boom(x):
    raise ValueError(f"boom at {x}")

with DAG("fails") as the_dag:
    boom.expand(x=ok())
"""


class DagsTestCommandTests:
    def test_it_maps_over_a_variable(self, tmp_path: Path) -> None:
        write_dag(tmp_path, VARIABLE_DAG)
        Variable.objects.create(key="regions", val=["eu", "us", "ap"])
        with override_settings(DAGS_FOLDER=tmp_path):
            s = dags_test("var_regions")
        assert s["state"] == "success"
        assert values(s, "visit") == ["visited eu", "visited us", "visited ap"]

    def test_it_fails_the_run_when_the_variable_is_missing(self, tmp_path: Path) -> None:
        write_dag(tmp_path, VARIABLE_DAG)
        with override_settings(DAGS_FOLDER=tmp_path):
            s = dags_test("var_regions", expect_exit=1)
        assert s["state"] == "failed"
        assert field(s, "visit", "state") == ["failed"]
        log, _ = read_log(task_instance(s, "visit").pk, 1)
        assert "no Variable named 'regions'" in log

    def test_it_exits_1_when_the_run_fails(self, tmp_path: Path) -> None:
        write_dag(tmp_path, FAILING_DAG)
        with override_settings(DAGS_FOLDER=tmp_path):
            s = dags_test("fails", expect_exit=1)
        assert s["state"] == "failed"
        assert field(s, "ok", "state") == ["success"]
        assert field(s, "boom", "state") == ["failed"]
        log, _ = read_log(task_instance(s, "boom", 0).pk, 1)
        assert "ValueError: boom at 1" in log

    def test_it_prints_a_human_summary_without_json(self) -> None:
        out = io.StringIO()
        call_command("dags", "test", "example_map_index_template", stdout=out)
        lines = out.getvalue().splitlines()
        assert "count_words[0] (notes.txt): success (try 1) -> 2" in lines
        assert lines[-1].startswith("Run test__") and lines[-1].endswith(": success")

    @pytest.mark.parametrize(("conf", "message"), [
        ("{bad", "conf is not valid JSON"),
        ("[1, 2]", "conf must be a JSON object, not list"),
    ])
    def test_it_refuses_bad_conf(self, conf: str, message: str) -> None:
        with pytest.raises(CommandError, match=message):
            call_command("dags", "test", "example_add", "--conf", conf, stdout=io.StringIO())
        assert not DagRun.objects.exists()

    def test_it_names_an_unknown_dag_and_the_import_errors(self, tmp_path: Path) -> None:
        (tmp_path / "broken.py").write_text("import no_such_module_here\n")
        with override_settings(DAGS_FOLDER=tmp_path), pytest.raises(CommandError) as exc:
            call_command("dags", "test", "nope", stdout=io.StringIO())
        assert "DAG 'nope' not found" in str(exc.value)
        assert "broken.py" in str(exc.value) and "no_such_module_here" in str(exc.value)


class DagsListCommandTests:
    def test_it_lists_dags_and_import_errors(self, tmp_path: Path) -> None:
        write_dag(tmp_path, 'with DAG("good_one", schedule="@daily", start_date=datetime(2024, 1, 1)) as d:\n    EmptyOperator(task_id="e")\n',
                  name="good.py")
        (tmp_path / "broken.py").write_text("raise RuntimeError('this DAG file is broken')\n")
        out, err = io.StringIO(), io.StringIO()
        with override_settings(DAGS_FOLDER=tmp_path):
            call_command("dags", "list", stdout=out, stderr=err)
        rows = [line.split() for line in out.getvalue().splitlines()]
        assert rows[0][0] == "dag_id"
        good = next(r for r in rows if r[0] == "good_one")
        assert good[1:3] == ["@daily", "False"] and good[3] == str(tmp_path / "good.py")
        assert "1 import error(s):" in err.getvalue()
        assert str(tmp_path / "broken.py") in err.getvalue()
        assert "RuntimeError: this DAG file is broken" in err.getvalue()
        assert DagModel.objects.get(dag_id="good_one").is_active

    def test_it_clears_an_import_error_once_the_file_is_fixed(self, tmp_path: Path) -> None:
        broken = tmp_path / "broken.py"
        broken.write_text("raise RuntimeError('not yet')\n")
        with override_settings(DAGS_FOLDER=tmp_path):
            call_command("dags", "list", stdout=io.StringIO(), stderr=io.StringIO())
            assert DagImportError.objects.filter(filename=str(broken)).exists()
            write_dag(tmp_path, 'with DAG("fixed") as d:\n    EmptyOperator(task_id="e")\n', name="broken.py")
            err = io.StringIO()
            call_command("dags", "list", stdout=io.StringIO(), stderr=err)
        assert err.getvalue() == ""
        assert not DagImportError.objects.filter(filename=str(broken)).exists()
        assert DagModel.objects.get(dag_id="fixed").is_active
