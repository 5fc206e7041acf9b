"""The DAG-file API: ``from dagsapp.sdk import DAG, dag, task, task_group, ...``."""
from __future__ import annotations

from dagsapp.baseoperator import BaseOperator, MappedOperator
from dagsapp.context import get_current_context
from dagsapp.dag import DAG, dag
from dagsapp.decorators import task, task_group
from dagsapp.exceptions import AirflowFailException, AirflowSkipException
from dagsapp.operators import BashOperator, EmptyOperator, PythonOperator
from dagsapp.secrets import mask_secret
from dagsapp.taskgroup import TaskGroup
from dagsapp.trigger_rule import TriggerRule
from dagsapp.xcom_arg import ParamRef, VariableRef, XComArg

__all__ = [
    "DAG", "AirflowFailException", "AirflowSkipException", "BaseOperator", "BashOperator", "EmptyOperator",
    "MappedOperator", "ParamRef", "PythonOperator", "TaskGroup", "TriggerRule", "VariableRef", "XComArg",
    "dag", "get_current_context", "mask_secret", "task", "task_group",
]
