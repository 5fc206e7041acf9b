"""DAG files for the deferral tests (written into a temporary DAG folder)."""
from __future__ import annotations

DEFER_HEADER = """
from typing import Any
from dagsapp.sdk import BaseOperator, BaseSensorOperator, StartTriggerArgs, TimeDeltaSensor, FileSensor
from tests.runs.triggering.triggers import EchoTrigger, FailingTrigger, SilentTrigger, BlockingTrigger, ForeverTrigger


class Waiter(BaseOperator):
    def __init__(self, *, trigger: str = "echo", timeout: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.trigger = trigger
        self.timeout = timeout

    def execute(self, context):
        print("before the deferral")
        made = {"echo": lambda: EchoTrigger({"n": context["map_index"]}, 0.2), "fail": FailingTrigger, "silent": SilentTrigger,
                "block": lambda: BlockingTrigger(0.5), "forever": ForeverTrigger}[self.trigger]()
        self.defer(trigger=made, method_name="done", kwargs={"who": self.task_id}, timeout=self.timeout)

    def done(self, context, event=None, who=None):
        print(f"resumed {who} with {event}")
        return {"event": event, "who": who}


class WaitSensor(BaseSensorOperator):
    start_trigger_args = StartTriggerArgs(
        trigger_cls="dagsapp.triggers.TimeDeltaTrigger",
        trigger_kwargs={"delta": 1},
        next_method="execute_complete",
        next_kwargs=None,
        timeout=None,
    )
    start_from_trigger = True

    def __init__(self, *args: Any, trigger_kwargs: dict[str, Any] | None, start_from_trigger: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_trigger_args.trigger_kwargs = trigger_kwargs
        self.start_from_trigger = start_from_trigger

    def execute(self, context):
        print("executed on a worker")
        return "worker"

    def execute_complete(self, context, event=None):
        return "trigger"
"""

CLASSIC = DEFER_HEADER + """
with DAG("classic") as the_dag:
    Waiter(task_id="wait") >> BashOperator(task_id="after", bash_command="echo after")
"""

FAILING = DEFER_HEADER + """
with DAG("failing") as the_dag:
    Waiter(task_id="fail", trigger="fail")
    Waiter(task_id="silent", trigger="silent")
"""

TIMEOUT = DEFER_HEADER + """
with DAG("timeout") as the_dag:
    Waiter(task_id="forever", trigger="forever", timeout=1)
    TimeDeltaSensor(task_id="soft", delta=3600, deferrable=True, timeout=1, soft_fail=True)
"""

MAPPED = DEFER_HEADER + """
@task
def list_waits():
    return [{"delta": 0.2}, {"delta": 0.4}, {"delta": 0.1}]

with DAG("mapped") as the_dag:
    WaitSensor.partial(task_id="literal", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 0.2}, {"delta": 0.3}])
    WaitSensor.partial(task_id="upstream", start_from_trigger=True).expand(trigger_kwargs=list_waits())
    WaitSensor.partial(task_id="mixed").expand_kwargs([
        {"trigger_kwargs": {"delta": 0.1}, "start_from_trigger": True},
        {"trigger_kwargs": {"delta": 0.1}, "start_from_trigger": False},
    ])
    WaitSensor.partial(task_id="wrong", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 0.1}, {"hours": 1}, "soon"])
"""

TWELVE = DEFER_HEADER + """
with DAG("twelve") as the_dag:
    WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 3}] * 12)
"""

CLEAR = DEFER_HEADER + """
with DAG("clear_me") as the_dag:
    Waiter(task_id="forever", trigger="forever")
"""

MANY = DEFER_HEADER + """
with DAG("many") as the_dag:
    WaitSensor.partial(task_id="wait", start_from_trigger=True).expand(trigger_kwargs=[{"delta": 6}] * 200)
"""

BLOCKING = DEFER_HEADER + """
with DAG("blocking") as the_dag:
    Waiter(task_id="block", trigger="block")
"""
