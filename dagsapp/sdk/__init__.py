"""The DAG-file API: ``from dagsapp.sdk import DAG, dag, task, task_group, ...``."""
from __future__ import annotations

from dagsapp.baseoperator import BaseOperator, MappedOperator
from dagsapp.context import get_current_context
from dagsapp.dag import DAG, dag
from dagsapp.decorators import task, task_group
from dagsapp.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
)
from dagsapp.operators import BashOperator, EmptyOperator, PythonOperator
from dagsapp.params import Param
from dagsapp.secrets import mask_secret
from dagsapp.sensors import BaseSensorOperator, DateTimeSensor, FileSensor, PokeReturnValue, TimeDeltaSensor
from dagsapp.taskgroup import TaskGroup
from dagsapp.trigger_rule import TriggerRule
from dagsapp.triggers import (
    BaseTrigger,
    DateTimeTrigger,
    FileTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TimeDeltaTrigger,
    TriggerEvent,
)
from dagsapp.xcom_arg import ParamRef, VariableRef, XComArg

__all__ = [
    "DAG", "AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException", "BaseOperator", "BaseSensorOperator",
    "BaseTrigger", "BashOperator", "DateTimeSensor", "DateTimeTrigger", "EmptyOperator", "FileSensor", "FileTrigger",
    "MappedOperator", "Param", "ParamRef", "PokeReturnValue", "PythonOperator", "StartTriggerArgs", "TaskDeferralError",
    "TaskDeferralTimeout", "TaskDeferred", "TaskFailedEvent", "TaskGroup", "TaskSkippedEvent", "TaskSuccessEvent",
    "TimeDeltaSensor", "TimeDeltaTrigger", "TriggerEvent", "TriggerRule", "VariableRef", "XComArg",
    "dag", "get_current_context", "mask_secret", "task", "task_group",
]
