"""expand_mapped_task: one instance per item, lengths from upstream, limits, re-expansion, refs."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import override_settings

from runs.models import TaskInstance, Variable
from runs.resolver import DbResolver
from tests.dag_sources import LITERAL, over_variable
from tests.runs.factories import (
    FAILED,
    NONE,
    REMOVED,
    SCHEDULED,
    SKIPPED,
    SUCCESS,
    UPSTREAM_FAILED,
    data,
    expand,
    make_run,
    placeholder_log,
    record_length,
    schedule,
    set_state,
    states,
    ti,
)

pytestmark = pytest.mark.django_db

FROM_UPSTREAM = """
@task
def make():
    return [1, 2, 3]

@task
def add(x):
    return x + 1

with DAG("from_upstream") as the_dag:
    add.expand(x=make())
"""

PARAM_WITHOUT_DEFAULT = """
@task
def show(v):
    return v

with DAG("params") as the_dag:
    show.expand(v=ParamRef("files"))
"""


class ExpandMappedTaskTests:
    def test_it_replaces_the_placeholder_with_one_instance_per_item(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, LITERAL, dag_id="literal")
        assert states(run, "add") == {-1: NONE}

        assert expand(run, "add") == 3

        # Nothing upstream to wait for: ready to queue at once, not written twice.
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED}

    def test_it_waits_to_expand_until_its_trigger_rule_lets_it_run(self, tmp_path: Path) -> None:
        # As Airflow: a task expands once it could run, so an upstream that fails later leaves one
        # upstream_failed placeholder, not one upstream_failed instance per item.
        run = make_run(tmp_path, """
@task
def make():
    return [1, 2]

@task
def other():
    return 1

@task
def add(x):
    return x + 1

with DAG("waits_other") as the_dag:
    other() >> add.expand(x=make())
""", dag_id="waits_other")
        record_length(run, "make", 2)

        assert expand(run, "add") == 0
        assert states(run, "add") == {-1: NONE}

        set_state(run, "other", SUCCESS)
        assert expand(run, "add") == 2
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED}

    def test_it_does_not_expand_when_another_upstream_failed(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def make():
    return [1, 2]

@task
def other():
    return 1

@task
def add(x):
    return x + 1

with DAG("other_failed") as the_dag:
    other() >> add.expand(x=make())
""", dag_id="other_failed")
        record_length(run, "make", 2)
        set_state(run, "other", FAILED)

        assert expand(run, "add") == 0
        assert schedule(run)
        assert states(run, "add") == {-1: UPSTREAM_FAILED}

    def test_it_does_not_expand_over_a_mapped_upstream_with_a_failed_index(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, """
@task
def first(x):
    return x

@task
def second(x):
    return x * 10

with DAG("mapped_to_mapped") as the_dag:
    second.expand(x=first.expand(x=[1, 2, 3]))
""", dag_id="mapped_to_mapped")
        expand(run, "first")
        set_state(run, "first", SUCCESS)
        set_state(run, "first", FAILED, map_index=1)

        assert expand(run, "second") == 0
        assert schedule(run)
        assert states(run, "second") == {-1: UPSTREAM_FAILED}


    def test_it_does_nothing_the_second_time(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, LITERAL, dag_id="literal")
        expand(run, "add")

        assert expand(run, "add") == 0

        assert TaskInstance.objects.filter(dag_run=run, task_id="add").count() == 3

    def test_it_waits_for_the_upstream_length_then_expands(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")

        assert expand(run, "add") == 0
        assert states(run, "add") == {-1: NONE}

        record_length(run, "make", 4)
        assert expand(run, "add") == 4
        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED, 3: SCHEDULED}

    def test_it_fails_when_the_upstream_succeeded_without_a_length(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        set_state(run, "make", SUCCESS)

        assert expand(run, "add") == 0

        assert states(run, "add") == {-1: FAILED}
        assert "recorded no length" in placeholder_log(run, "add")

    def test_it_skips_an_empty_expansion_and_downstream_follows_trigger_rules(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM + """
    after = EmptyOperator(task_id="after")
    after_none_failed = EmptyOperator(task_id="after_none_failed", trigger_rule="none_failed")
    after_all_done = EmptyOperator(task_id="after_all_done", trigger_rule="all_done")
    the_dag.get_task("add") >> [after, after_none_failed, after_all_done]
""", dag_id="from_upstream")
        record_length(run, "make", 0)

        assert expand(run, "add") == 0
        run.refresh_from_db()
        assert states(run, "add") == {-1: SKIPPED}

        schedule(run)
        assert states(run, "after") == {-1: SKIPPED}
        assert states(run, "after_none_failed") == {-1: SCHEDULED}
        assert states(run, "after_all_done") == {-1: SCHEDULED}

    @override_settings(MAX_MAP_LENGTH=3)
    def test_it_fails_the_placeholder_over_the_length_limit(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 4)

        assert expand(run, "add") == 0

        assert states(run, "add") == {-1: FAILED}
        assert ti(run, "add").try_number == 1
        log = placeholder_log(run, "add")
        assert "4 items" in log
        assert "limit of 3" in log

    @override_settings(MAX_MAP_LENGTH=3)
    def test_it_allows_more_with_a_per_task_max_map_length(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM.replace("add.expand", "add.partial(max_map_length=5).expand"), dag_id="from_upstream")
        record_length(run, "make", 5)

        assert expand(run, "add") == 5

        assert len(states(run, "add")) == 5

    def test_it_creates_missing_indexes_and_removes_extra_ones_on_reexpansion(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 3)
        expand(run, "add")
        set_state(run, "add", SUCCESS)

        # As after a clear of `add`: the placeholder is back and `make` now returns 5 items.
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 5)
        assert expand(run, "add") == 2
        assert states(run, "add") == {0: SUCCESS, 1: SUCCESS, 2: SUCCESS, 3: SCHEDULED, 4: SCHEDULED}

        # Cleared again, and now 2 items.
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 2)
        expand(run, "add")
        assert states(run, "add") == {0: SUCCESS, 1: SUCCESS, 2: REMOVED, 3: REMOVED, 4: REMOVED}

    def test_it_restores_a_removed_index_when_the_input_grows_again(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 3)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 1)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 3)

        expand(run, "add")

        assert states(run, "add") == {0: SCHEDULED, 1: SCHEDULED, 2: SCHEDULED}

    def test_it_removes_every_index_when_a_reexpansion_is_empty(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, FROM_UPSTREAM, dag_id="from_upstream")
        record_length(run, "make", 2)
        expand(run, "add")
        TaskInstance.objects.create(dag_run=run, task_id="add", map_index=-1, state=NONE)
        record_length(run, "make", 0)

        expand(run, "add")

        assert states(run, "add") == {-1: SKIPPED, 0: REMOVED, 1: REMOVED}

    def test_it_expands_a_param_ref_over_the_run_conf_first(self, tmp_path: Path) -> None:
        source = """
@task
def show(v):
    return v

with DAG("params", params={"files": ["a", "b"]}) as the_dag:
    show.expand(v=ParamRef("files"))
"""
        with_conf = make_run(tmp_path, source, dag_id="params", conf={"files": ["x", "y", "z"]})
        without_conf = make_run(tmp_path, source, dag_id="params")

        assert expand(with_conf, "show") == 3
        assert expand(without_conf, "show") == 2

    @pytest.mark.parametrize(("source", "dag_id", "message"), [
        pytest.param(PARAM_WITHOUT_DEFAULT, "params", "no 'files'", id="a_param_ref"),
        pytest.param(over_variable("nope"), "variables", "no Variable named 'nope' exists", id="a_variable_ref_to_a_missing_variable"),
    ])
    def test_it_fails_a_ref_that_names_nothing(self, tmp_path: Path, source: str, dag_id: str, message: str) -> None:
        run = make_run(tmp_path, source, dag_id=dag_id)

        assert expand(run, "show") == 0

        assert states(run, "show") == {-1: FAILED}
        assert message in placeholder_log(run, "show")

    def test_it_expands_a_variable_ref_over_a_snapshot(self, tmp_path: Path) -> None:
        Variable.objects.create(key="regions", val=["eu", "us"])
        run = make_run(tmp_path, over_variable("regions"), dag_id="variables")

        assert expand(run, "show") == 2
        Variable.objects.filter(key="regions").update(val=["a", "b", "c"])

        # What a worker resolves for its index: the value the expansion saw.
        assert DbResolver(run, data(run)).ref_value("variable", "regions") == ["eu", "us"]


OVER_UNFINISHED_UPSTREAM = """
@task
def make():
    return [1, 2]

@task(trigger_rule="RULE")
def over(x):
    return x

with DAG("over_unfinished") as the_dag:
    over.expand(x=make())
"""


class ExpansionOverAnUpstreamWithoutResultTests:
    """A trigger rule may let a mapped task run over an upstream that failed or was skipped, but
    there is nothing to expand: Airflow marks it upstream_failed or skipped, and the run ends."""

    @pytest.mark.parametrize(("rule", "upstream", "expected"), [
        ("all_done", FAILED, UPSTREAM_FAILED),
        ("one_failed", FAILED, UPSTREAM_FAILED),
        ("all_done", UPSTREAM_FAILED, UPSTREAM_FAILED),
        ("none_failed", SKIPPED, SKIPPED),
        ("all_done", SKIPPED, SKIPPED),
    ])
    def test_it_ends_the_placeholder(self, tmp_path: Path, rule: str, upstream: str, expected: str) -> None:
        run = make_run(tmp_path, OVER_UNFINISHED_UPSTREAM.replace("RULE", rule), dag_id="over_unfinished")
        set_state(run, "make", upstream)

        assert expand(run, "over") == 0
        schedule(run)

        assert states(run, "over") == {-1: expected}
        assert "has no result to expand over" in placeholder_log(run, "over")

    def test_it_waits_while_the_upstream_runs(self, tmp_path: Path) -> None:
        run = make_run(tmp_path, OVER_UNFINISHED_UPSTREAM.replace("RULE", "all_done"), dag_id="over_unfinished")
        set_state(run, "make", "running")

        assert expand(run, "over") == 0
        assert not schedule(run)
        assert states(run, "over") == {-1: NONE}

    def test_it_waits_for_a_groups_input_that_is_not_a_direct_upstream(self, tmp_path: Path) -> None:
        # label's only upstream is prefix (same index); the group's input comes from numbers.
        run = make_run(tmp_path, """
@task
def numbers():
    return [5, 6]

@task
def prefix():
    return "p"

@task
def label(x, pre):
    return f"{pre}{x}"

@task_group
def stage(x):
    return label(x, prefix())

with DAG("group_input") as the_dag:
    stage.expand(x=numbers())
""", dag_id="group_input")
        set_state(run, "numbers", "running")

        assert expand(run, "stage.label") == 0
        assert states(run, "stage.label") == {-1: NONE}

        record_length(run, "numbers", 2)
        assert expand(run, "stage.label") == 2
