"""The audit log: written once per action by runs/services.py, from the dashboard, the REST API and
the CLI, never by the scheduler; append-only in the model and in PostgreSQL."""

from __future__ import annotations

import getpass
import io
import json
import textwrap
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from runs.audit import Actor, acting_as
from runs.models import AuditLog, AuditLogError, AuditSource, DagModel, DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import clear_dag_run, create_dag_run, mark_task_instances
from runs.web.api_v2.auth import issue_token
from tests.conftest import make_user

AUDIT_DAG = """\
from __future__ import annotations
from dagsapp.sdk import DAG, EmptyOperator, Param

with DAG("audited", schedule=None, params={"n": Param(3, type="integer", minimum=1, maximum=10)}):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

JSON = "application/json"


@pytest.fixture
def audited(db: None, tmp_path: Path) -> str:
    (tmp_path / "audited.py").write_text(textwrap.dedent(AUDIT_DAG))
    process_dags_folder(tmp_path)
    return "audited"


def bearer(group: str, name: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {issue_token(make_user(name, group))}"})


@pytest.mark.django_db
class RecordingTests:
    def test_it_records_nothing_for_the_schedulers_own_runs(self, audited: str) -> None:
        create_dag_run(dag_id=audited)  # no actor: what the scheduler does
        assert not AuditLog.objects.exists()

    def test_it_records_a_cli_trigger_as_the_operating_system_user(self, audited: str) -> None:
        call_command("dags", "trigger", audited, "--conf", '{"n": 5}', "--run-id", "cli1", stdout=io.StringIO())
        entry = AuditLog.objects.get()
        assert (entry.event, entry.owner, entry.source, entry.dag_id, entry.run_id, entry.count, entry.remote_addr) == (
            "trigger", getpass.getuser(), "cli", audited, "cli1", 2, None)
        assert entry.extra["conf_keys"] == ["n"]

    def test_it_refuses_a_cli_conf_that_the_params_refuse_and_says_why(self, audited: str) -> None:
        with pytest.raises(CommandError, match=r"conf does not fit the params of DAG 'audited': n: 11 is greater than the maximum of 10"):
            call_command("dags", "trigger", audited, "--conf", '{"n": 11}', stdout=io.StringIO())
        assert not DagRun.objects.exists() and not AuditLog.objects.exists()

    def test_it_pauses_from_the_cli_and_records_it(self, audited: str) -> None:
        out = io.StringIO()
        call_command("dags", "pause", audited, stdout=out)
        call_command("dags", "pause", audited, stdout=out)
        assert out.getvalue().splitlines() == ["DAG audited paused", "DAG audited was already paused"]
        assert DagModel.objects.get(dag_id=audited).is_paused
        assert list(AuditLog.objects.values_list("event", "source")) == [("pause", "cli")]

    def test_it_records_api_actions_with_the_user_and_address(self, audited: str) -> None:
        op = bearer("Operator", "api-op")
        response = op.post(f"/api/v2/dags/{audited}/dagRuns", {"dag_run_id": "a1", "conf": {"n": 2}}, content_type=JSON)
        assert response.status_code == 200
        assert op.patch(f"/api/v2/dags/{audited}", {"is_paused": True}, content_type=JSON).status_code == 200
        rows = list(AuditLog.objects.order_by("id").values_list("event", "owner", "source", "remote_addr", "run_id"))
        assert rows == [("trigger", "api-op", "api", "127.0.0.1", "a1"), ("pause", "api-op", "api", "127.0.0.1", "")]

    def test_it_refuses_an_api_conf_that_the_params_refuse_with_a_message_per_param(self, audited: str) -> None:
        response = bearer("Operator", "api-op").post(f"/api/v2/dags/{audited}/dagRuns", {"dag_run_id": "x", "conf": {"n": "many"}},
                                                     content_type=JSON)
        assert response.status_code == 400
        assert response.json() == {"detail": "conf does not fit the params of DAG 'audited': n: 'many' is not of type 'integer'",
                                   "params": {"n": "'many' is not of type 'integer'"}}
        assert not DagRun.objects.exists()

    def test_it_records_nothing_for_a_dry_run_and_once_for_the_real_clear(self, audited: str) -> None:
        run = create_dag_run(dag_id=audited, run_id="r")
        TaskInstance.objects.filter(dag_run=run).update(state="failed")
        op = bearer("Operator", "api-op")
        body = {"dag_run_id": "r", "dry_run": True, "only_failed": True}
        assert op.post(f"/api/v2/dags/{audited}/clearTaskInstances", body, content_type=JSON).status_code == 200
        assert not AuditLog.objects.exists()
        assert op.post(f"/api/v2/dags/{audited}/clearTaskInstances", {**body, "dry_run": False}, content_type=JSON).status_code == 200
        assert sum(AuditLog.objects.filter(event="clear").values_list("count", flat=True)) == 2

    def test_it_records_a_dashboard_action_once_with_how_many_instances(self, audited: str) -> None:
        run = create_dag_run(dag_id=audited, run_id="r")
        TaskInstance.objects.filter(dag_run=run).update(state="failed")
        client = Client()
        client.force_login(make_user("ui-op", "Operator"))
        assert client.post(f"/dags/{audited}/runs/r/clear/", {"only_failed": "on"}).status_code == 302
        entry = AuditLog.objects.get()
        assert (entry.event, entry.owner, entry.source, entry.count, entry.extra) == ("clear_run", "ui-op", "ui", 2, {"only": "failed"})

    def test_it_records_marks_with_their_state_and_index(self, audited: str) -> None:
        run = create_dag_run(dag_id=audited, run_id="r")
        with acting_as(Actor("someone", AuditSource.CLI)):
            assert mark_task_instances(dag_run=run, task_id="a", map_indexes=[-1], state="success") == 1
        entry = AuditLog.objects.get()
        assert (entry.event, entry.task_id, entry.map_index, entry.count, entry.extra["state"]) == ("mark", "a", -1, 1, "success")

    def test_it_leaves_no_record_when_the_action_is_rolled_back(self, audited: str) -> None:
        run = create_dag_run(dag_id=audited, run_id="r")
        with acting_as(Actor("someone", AuditSource.CLI)), pytest.raises(RuntimeError), transaction.atomic():
            clear_dag_run(dag_run=run)
            raise RuntimeError("boom")
        assert not AuditLog.objects.exists()


@pytest.mark.django_db
class AppendOnlyTests:
    @pytest.fixture
    def entry(self, audited: str) -> AuditLog:
        with acting_as(Actor("someone", AuditSource.CLI)):
            create_dag_run(dag_id=audited, run_id="r")
        return AuditLog.objects.get()

    def test_it_refuses_changes_through_the_model(self, entry: AuditLog) -> None:
        entry.owner = "someone else"
        with pytest.raises(AuditLogError):
            entry.save()
        with pytest.raises(AuditLogError):
            entry.delete()
        with pytest.raises(AuditLogError):
            AuditLog.objects.filter(pk=entry.pk).update(owner="x")
        with pytest.raises(AuditLogError):
            AuditLog.objects.all().delete()

    @pytest.mark.parametrize("sql", ["UPDATE runs_auditlog SET owner = 'x'", "DELETE FROM runs_auditlog"])
    def test_it_refuses_update_and_delete_in_the_database(self, entry: AuditLog, sql: str) -> None:
        with pytest.raises(DatabaseError, match="the audit log is append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
        assert AuditLog.objects.get().owner == "someone"

    def test_it_is_read_only_in_the_django_admin(self, entry: AuditLog, client: Client) -> None:
        admin = make_user("boss", "Admin")
        admin.is_superuser = admin.is_staff = True
        admin.save()
        client.force_login(admin)
        assert client.get("/admin/runs/auditlog/").status_code == 200
        assert client.get(f"/admin/runs/auditlog/{entry.pk}/change/").content.decode().count('name="owner"') == 0
        assert client.post(f"/admin/runs/auditlog/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
        assert client.get("/admin/runs/auditlog/add/").status_code == 403
        assert json.loads(json.dumps(AuditLog.objects.get().extra))["run_type"] == "manual"
