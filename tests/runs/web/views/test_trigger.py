"""The trigger page: a form built from the DAG's Params, validated on the server field by field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from django.test import Client

from runs.models import AuditLog, DagRun
from runs.scheduling.dag_processing import process_dags_folder

PARAMS_DAG = """\
from __future__ import annotations
from dagsapp.sdk import DAG, EmptyOperator, Param

with DAG("with_params", schedule=None, params={
    "count": Param(3, type="integer", minimum=1, maximum=10, title="How many", description="Number of files to make"),
    "ratio": Param(0.5, type="number"),
    "region": Param("eu", type="string", enum=["eu", "us"], description="Where to run"),
    "dry_run": Param(False, type="boolean"),
    "name": Param(type="string", minLength=2),
    "tags": Param(["a"], type="array", items={"type": "string"}),
    "day": Param("2026-01-01", type="string", format="date"),
    "plain": 7,
}):
    EmptyOperator(task_id="t")
"""


@pytest.fixture
def params_dag(db: None, tmp_path: Path) -> str:
    (tmp_path / "with_params.py").write_text(textwrap.dedent(PARAMS_DAG))
    process_dags_folder(tmp_path)
    return "with_params"


GOOD = {"param.count": "4", "param.ratio": "0.25", "param.region": '"us"', "param.dry_run": "on", "param.name": "ann",
        "param.tags": '["x", "y"]', "param.day": "2026-02-03", "conf": "", "run_id": "", "logical_date": ""}


@pytest.mark.django_db
class TriggerFormTests:
    def test_it_renders_a_field_per_param_with_defaults_and_descriptions(self, operator_client: Client, params_dag: str) -> None:
        html = operator_client.get(f"/dags/{params_dag}/trigger/").content.decode()
        assert '<input id="param-count" name="param.count" value="3"\n        type="number" step="1" min="1" max="10" aria-describedby="param-count-help">' in html
        # In the order the DAG file wrote them (jsonb alone would sort them).
        assert [html.index(f'id="field-{n}"') for n in ("count", "ratio", "region", "dry_run", "name", "tags", "day")] == sorted(
            html.index(f'id="field-{n}"') for n in ("count", "ratio", "region", "dry_run", "name", "tags", "day"))
        assert "How many" in html and "Number of files to make" in html
        assert '<option value="&quot;eu&quot;" selected>eu</option>' in html
        assert '<input type="checkbox" id="param-dry_run" name="param.dry_run"> dry_run</label>' in html
        assert '<textarea id="param-tags"' in html and "[\n  &quot;a&quot;\n]" in html
        assert 'type="date"' in html and 'value="2026-01-01"' in html
        assert 'id="param-name"' in html and 'value=""' in html  # required: no default
        # The raw JSON conf, the run id and the logical date: one advanced section.
        assert '<details class="advanced" id="advanced">' in html
        assert 'name="run_id"' in html and 'name="logical_date"' in html and 'name="conf"' in html
        assert "<code>plain</code>" in html

    def test_it_triggers_with_the_fields_as_conf_and_lands_on_the_grid_with_the_run(self, operator_client: Client, params_dag: str) -> None:
        response = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "run_id": "mine", "logical_date": "2026-03-04T05:06"})
        assert response.status_code == 302
        assert response["Location"] == f"/dags/{params_dag}/grid/?run_id=mine"
        run = DagRun.objects.get(dag_id=params_dag)
        assert run.conf == {"count": 4, "ratio": 0.25, "region": "us", "dry_run": True, "name": "ann", "tags": ["x", "y"], "day": "2026-02-03"}
        assert run.logical_date.isoformat() == "2026-03-04T05:06:00+00:00"
        entry = AuditLog.objects.get()
        assert (entry.event, entry.owner, entry.source, entry.run_id, entry.count) == ("trigger", "op", "ui", "mine", 1)

    def test_it_shows_a_message_beside_each_bad_field_and_creates_nothing(self, operator_client: Client, params_dag: str) -> None:
        bad = {**GOOD, "param.count": "11", "param.ratio": "abc", "param.name": "", "param.tags": "[1,", "param.region": '"mars"'}
        response = operator_client.post(f"/dags/{params_dag}/trigger/", bad)
        assert response.status_code == 400
        html = response.content.decode()
        assert '<div class="error small field-error" id="param-ratio-error" role="alert">enter a number</div>' in html
        assert 'id="param-name-error" role="alert">a value is required</div>' in html
        assert 'id="param-tags-error" role="alert">not valid JSON' in html
        assert not DagRun.objects.exists()
        # Once the text reads, the schema speaks: maximum and enum, beside their fields; the typed values are kept.
        response = operator_client.post(f"/dags/{params_dag}/trigger/", {**bad, "param.ratio": "1", "param.name": "ann", "param.tags": "[]"})
        html = response.content.decode()
        assert 'id="param-count-error" role="alert">11 is greater than the maximum of 10</div>' in html
        assert "id=\"param-region-error\" role=\"alert\">&#x27;mars&#x27; is not one of [&#x27;eu&#x27;, &#x27;us&#x27;]</div>" in html
        assert 'value="11"' in html
        assert not DagRun.objects.exists() and not AuditLog.objects.exists()

    def test_it_lets_the_raw_json_add_keys_and_win_over_fields(self, operator_client: Client, params_dag: str) -> None:
        response = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "conf": '{"count": 9, "extra": [1]}'})
        assert response.status_code == 302
        assert DagRun.objects.get().conf["count"] == 9 and DagRun.objects.get().conf["extra"] == [1]
        response = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "conf": '{"count": 0}'})
        assert 'id="param-count-error" role="alert">0 is less than the minimum of 1</div>' in response.content.decode()

    def test_it_puts_run_id_and_date_errors_beside_their_fields(self, operator_client: Client, params_dag: str) -> None:
        operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "run_id": "taken"})
        html = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "run_id": "taken"}).content.decode()
        assert 'id="run_id-error" role="alert">A run &#x27;taken&#x27; of DAG &#x27;with_params&#x27; already exists</div>' in html
        html = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "logical_date": "yesterday"}).content.decode()
        assert 'id="logical_date-error" role="alert">not a date and time' in html
        assert DagRun.objects.count() == 1

    def test_it_escapes_descriptions_and_posted_values(self, operator_client: Client, params_dag: str) -> None:
        html = operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "param.name": "<script>x</script>", "param.count": "<b>"}).content.decode()
        assert "<script>x" not in html and "<b>" not in html

    def test_it_refuses_a_viewer_the_form_and_the_post(self, viewer_client: Client, params_dag: str) -> None:
        assert viewer_client.get(f"/dags/{params_dag}/trigger/").status_code == 403
        assert viewer_client.post(f"/dags/{params_dag}/trigger/", GOOD).status_code == 403
        assert not DagRun.objects.exists()

    def test_it_keeps_the_page_to_a_few_queries(self, operator_client: Client, params_dag: str, django_assert_max_num_queries: object) -> None:
        with django_assert_max_num_queries(5):  # type: ignore[operator]
            assert operator_client.get(f"/dags/{params_dag}/trigger/").status_code == 200

    def test_it_prefills_the_fields_from_a_runs_conf_to_trigger_again(self, operator_client: Client, params_dag: str) -> None:
        operator_client.post(f"/dags/{params_dag}/trigger/", {**GOOD, "run_id": "first", "conf": '{"extra": 1}'})
        panel = operator_client.get(f"/dags/{params_dag}/runs/first/").content.decode()
        link = panel.split('id="run-retrigger-link"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
        assert link.startswith(f"/dags/{params_dag}/trigger/?conf=")
        html = operator_client.get(link).content.decode()
        assert 'id="param-count" name="param.count" value="4"' in html
        assert '<option value="&quot;us&quot;" selected>us</option>' in html
        assert 'name="param.dry_run" checked' in html and 'name="param.name" value="ann"' in html
        assert "{\n  &quot;extra&quot;: 1\n}</textarea>" in html  # the key that is no Param stays in the JSON
        assert '<details class="advanced" id="advanced" open>' in html
