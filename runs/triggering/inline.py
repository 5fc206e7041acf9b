"""Triggers run in the current process, for ``manage.py dags test`` (as Airflow's ``dags test`` does)."""
from __future__ import annotations

import asyncio
import logging
import sys
import traceback
from typing import Any

from dagsapp.triggers import BaseTaskEndEvent, build_trigger
from runs import deferral
from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.triggering.triggerer import _current, _Outbox, _RoutedStream, _TriggerLogHandler

S = TaskInstanceState


def run_triggers_once(run: DagRun, *, timeout: float) -> int:
    """Run the run's triggers together until one fires (or ``timeout`` seconds pass) and store
    what they produced; returns how many instances moved. Triggers that did not fire are simply
    run again next time (a TimeDeltaTrigger is stored as the moment it fires)."""
    moved = deferral.time_out_deferrals()
    rows = list(TaskInstance.objects.filter(dag_run=run, state=S.DEFERRED, trigger__isnull=False)
                .values_list("pk", "try_number", "trigger_id", "trigger__classpath", "trigger__kwargs"))
    if not rows:
        return moved
    events: list[tuple[int, Any]] = []
    ends: list[tuple[int, str]] = []
    failures: list[tuple[int, str, str | None]] = []
    lines: list[tuple[int, int, str]] = []

    # What a trigger logs or prints goes into its instance's try log, as in the triggerer.
    outbox = _Outbox()

    async def one(ti_id: int, try_number: int, trigger_id: int, classpath: str, kwargs: dict[str, Any]) -> None:
        _current.set((ti_id, try_number))
        try:
            trigger = build_trigger(classpath, kwargs)
            async for event in trigger.run():
                if isinstance(event, BaseTaskEndEvent):
                    ends.append((trigger_id, str(event.state)))
                else:
                    lines.append((ti_id, try_number, deferral.trigger_line("INFO", f"Trigger fired: {event.payload!r}")))
                    events.append((trigger_id, event.payload))
                return
            failures.append((trigger_id, "Trigger ended without an event", None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a trigger's error fails its instance
            tb = "".join(traceback.format_exception(exc))
            lines.append((ti_id, try_number, deferral.trigger_line("ERROR", f"Trigger failure\n{tb}")))
            failures.append((trigger_id, "Trigger failure", tb))

    async def all_of_them() -> None:
        tasks = [asyncio.ensure_future(one(*row)) for row in rows]
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    handler = _TriggerLogHandler(outbox)
    root = logging.getLogger()
    root.addHandler(handler)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _RoutedStream(outbox, saved[0]), _RoutedStream(outbox, saved[1])
    try:
        asyncio.run(all_of_them())
    finally:
        sys.stdout, sys.stderr = saved
        root.removeHandler(handler)
    # The trigger's own lines first, then what came of it (fired, failed).
    deferral.append_logs([*outbox.lines, *lines])
    return (moved + deferral.resume_from_events(events) + deferral.end_from_events(ends)
            + deferral.fail_from_triggers(failures))
