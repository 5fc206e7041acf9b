from __future__ import annotations

from runs.models.audit import AuditEvent, AuditLog, AuditLogError, AuditSource
from runs.models.dag import DagImportError, DagModel, SerializedDag, Variable
from runs.models.dagrun import DagRun, DagRunState, DagRunType
from runs.models.heartbeat import Heartbeat
from runs.models.log import TaskInstanceLog
from runs.models.preference import TimeZoneMode, UserPreference
from runs.models.taskcount import TaskCount
from runs.models.taskinstance import FINISHED_STATES, ItemChange, TaskInstance, TaskInstanceState, TaskInstanceTry, TaskMap
from runs.models.trigger import Job, JobType, Trigger
from runs.models.xcom import XCom

__all__ = [
    "FINISHED_STATES", "AuditEvent", "AuditLog", "AuditLogError", "AuditSource", "DagImportError", "ItemChange", "DagModel", "DagRun",
    "DagRunState", "DagRunType", "Heartbeat", "Job", "JobType", "SerializedDag", "TaskCount", "TaskInstance", "TaskInstanceLog", "TaskInstanceState",
    "TaskInstanceTry", "TaskMap", "TimeZoneMode", "Trigger", "UserPreference", "Variable", "XCom",
]
