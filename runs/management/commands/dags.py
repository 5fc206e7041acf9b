from __future__ import annotations

import json
import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from runs.audit import acting_as, cli_actor
from runs.cli import dag_run_summary, run_dag_run_inline, wait_for_dag_run
from runs.models import DagImportError, DagModel, DagRunState, DagRunType
from runs.scheduling.dag_processing import process_dags_folder
from runs.services import DagRunError, create_dag_run, parse_conf, set_dag_paused


class Command(BaseCommand):
    help = "DAG commands: list, trigger, test, pause, unpause, reserialize."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="List DAGs and import errors (parses the DAG folder first).")
        sub.add_parser("reserialize", help="Parse the DAG folder and store every DAG.")
        trigger = sub.add_parser("trigger", help="Create a run for the scheduler and workers.")
        trigger.add_argument("dag_id")
        trigger.add_argument("--conf", default=None, help="JSON object")
        trigger.add_argument("--run-id", default=None)
        trigger.add_argument("--wait", action="store_true", help="Wait until the run ends")
        trigger.add_argument("--timeout", type=float, default=3600.0)
        trigger.add_argument("--json", action="store_true")
        test = sub.add_parser("test", help="Run one DagRun to completion in this process (no Celery).")
        test.add_argument("dag_id")
        test.add_argument("--conf", default=None, help="JSON object")
        test.add_argument("--json", action="store_true")
        test.add_argument("--timeout", type=float, default=3600.0)
        for verb in ("pause", "unpause"):
            sub.add_parser(verb, help=f"{verb.capitalize()} a DAG (a paused DAG gets no scheduled runs).").add_argument("dag_id")

    def handle(self, *args: Any, action: str, **opts: Any) -> None:
        try:
            # Recorded in the audit log as this operating-system user's (runs/audit.py).
            with acting_as(cli_actor()):
                getattr(self, f"_{action}")(**opts)
        except (DagRunError, TimeoutError) as exc:
            raise CommandError(str(exc)) from None

    def _reserialize(self, **opts: Any) -> None:
        changed = process_dags_folder()
        self.stdout.write(f"Parsed {settings.DAGS_FOLDER}: {changed} DAG(s) changed")

    def _list(self, **opts: Any) -> None:
        process_dags_folder()
        rows = DagModel.objects.filter(is_active=True).order_by("dag_id")
        width = max([len(d.dag_id) for d in rows] + [6])
        self.stdout.write(f"{'dag_id'.ljust(width)}  {'schedule'.ljust(12)}  paused  fileloc")
        for d in rows:
            self.stdout.write(f"{d.dag_id.ljust(width)}  {str(d.schedule).ljust(12)}  {str(d.is_paused).ljust(6)}  {d.fileloc}")
        errors = list(DagImportError.objects.all())
        if errors:
            self.stderr.write(f"\n{len(errors)} import error(s):")
            for e in errors:
                self.stderr.write(f"  {e.filename}:\n    " + e.stacktrace.strip().splitlines()[-1])

    def _trigger(self, *, dag_id: str, conf: str | None, run_id: str | None, wait: bool, timeout: float, json: bool, **opts: Any) -> None:
        run = create_dag_run(dag_id=dag_id, conf=parse_conf(conf), run_id=run_id, run_type=DagRunType.MANUAL)
        if not wait:
            self.stdout.write(f"Created run {run.run_id} of {dag_id}")
            return
        run = wait_for_dag_run(run, timeout=timeout)
        self._report(run, as_json=json)

    def _test(self, *, dag_id: str, conf: str | None, json: bool, timeout: float, **opts: Any) -> None:
        process_dags_folder()
        if not DagModel.objects.filter(dag_id=dag_id, is_active=True).exists():
            errors = DagImportError.objects.all()
            hint = "".join(f"\n{e.filename}:\n{e.stacktrace}" for e in errors)
            raise CommandError(f"DAG {dag_id!r} not found in {settings.DAGS_FOLDER}{hint}")
        run = create_dag_run(dag_id=dag_id, conf=parse_conf(conf), run_type=DagRunType.TEST)
        run = run_dag_run_inline(run, timeout=timeout)
        self._report(run, as_json=json)

    def _pause(self, *, dag_id: str, **opts: Any) -> None:
        self._set_paused(dag_id, True)

    def _unpause(self, *, dag_id: str, **opts: Any) -> None:
        self._set_paused(dag_id, False)

    def _set_paused(self, dag_id: str, paused: bool) -> None:
        if not DagModel.objects.filter(dag_id=dag_id).exists():
            raise CommandError(f"DAG {dag_id!r} does not exist")
        changed = set_dag_paused(dag_id=dag_id, is_paused=paused)
        word = "paused" if paused else "unpaused"
        self.stdout.write(f"DAG {dag_id} {word}" if changed else f"DAG {dag_id} was already {word}")

    def _report(self, run: Any, *, as_json: bool) -> None:
        summary = dag_run_summary(run)
        if as_json:
            self.stdout.write(json.dumps(summary, default=str))
        else:
            for ti in summary["task_instances"]:
                idx = "" if ti["map_index"] < 0 else f"[{ti['map_index']}]"
                name = f" ({ti['rendered_map_index']})" if ti["rendered_map_index"] else ""
                self.stdout.write(f"{ti['task_id']}{idx}{name}: {ti['state']} (try {ti['try_number']}) -> {ti['return_value']!r}")
            self.stdout.write(f"Run {run.run_id}: {run.state}")
        sys.stdout.flush()
        if run.state != DagRunState.SUCCESS:
            sys.exit(1)
