"""Request bodies and responses, with Airflow 3.3's field names (extra fields are ours)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import Field, field_validator


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return False


class Body(Schema):
    """A request body: PostgreSQL text cannot hold a NUL, so one anywhere is a 422, not a 500
    from the lookup or the insert (the query string and path are checked by config/middleware.py)."""

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _has_nul(value):
            raise ValueError("NUL characters are not allowed")
        return value


class DagTagResponse(Schema):
    name: str
    dag_id: str
    dag_display_name: str


class DAGResponse(Schema):
    dag_id: str
    dag_display_name: str
    is_paused: bool
    is_stale: bool
    last_parsed_time: datetime | None
    last_parse_duration: float | None = None
    last_expired: datetime | None = None
    bundle_name: str | None
    bundle_version: str | None = None
    relative_fileloc: str | None
    fileloc: str
    description: str | None
    timetable_summary: str | None
    timetable_description: str | None
    timetable_partitioned: bool = False
    timetable_periodic: bool
    tags: list[DagTagResponse]
    max_active_tasks: int
    max_active_runs: int | None
    max_consecutive_failed_dag_runs: int = 0
    has_task_concurrency_limits: bool
    has_import_errors: bool
    next_dagrun_logical_date: datetime | None
    next_dagrun_data_interval_start: datetime | None = None
    next_dagrun_data_interval_end: datetime | None = None
    next_dagrun_run_after: datetime | None
    allowed_run_types: list[str] | None = None
    owners: list[str]
    file_token: str
    is_backfillable: bool = False


class DAGCollectionResponse(Schema):
    dags: list[DAGResponse]
    total_entries: int


class DAGPatchBody(Body):
    is_paused: bool


class DagVersionResponse(Schema):
    id: UUID
    version_number: int
    dag_id: str
    bundle_name: str | None
    bundle_version: str | None = None
    bundle_url: str | None = None
    created_at: datetime
    dag_display_name: str


class DAGRunResponse(Schema):
    dag_run_id: str
    dag_id: str
    dag_display_name: str
    logical_date: datetime | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    data_interval_start: datetime | None
    data_interval_end: datetime | None
    run_after: datetime
    last_scheduling_decision: datetime | None = None
    run_type: str
    state: str
    triggered_by: str | None
    triggering_user_name: str | None = None
    conf: dict[str, Any] | None
    note: str | None = None
    dag_versions: list[DagVersionResponse]
    bundle_version: str | None = None
    partition_key: str | None = None


class DAGRunCollectionResponse(Schema):
    dag_runs: list[DAGRunResponse]
    total_entries: int


class TriggerDAGRunPostBody(Body):
    dag_run_id: str | None = None
    logical_date: datetime | None = None
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    run_after: datetime | None = None
    conf: dict[str, Any] | None = None
    note: str | None = None
    partition_key: str | None = None


class DAGRunPatchBody(Body):
    state: Literal["queued", "success", "failed"] | None = None
    note: str | None = Field(default=None, max_length=1000)


class DAGRunClearBody(Body):
    dry_run: bool = True
    only_failed: bool = False
    only_new: bool = False
    run_on_latest_version: bool = False
    note: str | None = None


class TolerationResponse(Schema):
    """Ours: a mapped task (or group) whose failures are all within its partial(max_failed_...)."""

    succeeded: int
    failed: int
    total: int
    summary: str


class TaskInstanceResponse(Schema):
    id: UUID
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    logical_date: datetime | None
    run_after: datetime
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    state: str | None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None
    unixname: str | None = None
    pool: str = "default_pool"
    pool_slots: int = 1
    queue: str | None
    priority_weight: int | None = 1
    operator: str | None
    operator_name: str | None
    queued_when: datetime | None
    scheduled_when: datetime | None = None
    pid: int | None
    executor: str | None = None
    executor_config: str = "{}"
    note: str | None = None
    rendered_map_index: str | None
    rendered_fields: dict[str, Any] | None = None
    trigger: dict[str, Any] | None = None
    triggerer_job: dict[str, Any] | None = None
    dag_version: DagVersionResponse | None
    # Ours: a nested instance's path of indexes, and the identity of the item it stands for.
    map_path: list[int] | None = None
    item_identity: str | None = None
    item_change: str | None = None


class TaskInstanceCollectionResponse(Schema):
    task_instances: list[TaskInstanceResponse]
    total_entries: int
    # Ours, on listMapped: the task's tolerated failures (null unless every failure is tolerated).
    tolerated_failures: TolerationResponse | None = None


class TaskInstanceHistoryResponse(Schema):
    task_id: str
    dag_id: str
    dag_run_id: str
    map_index: int
    start_date: datetime | None
    end_date: datetime | None
    duration: float | None
    state: str | None
    try_number: int
    max_tries: int
    task_display_name: str
    dag_display_name: str
    hostname: str | None
    unixname: str | None = None
    pool: str = "default_pool"
    pool_slots: int = 1
    queue: str | None
    priority_weight: int | None = 1
    operator: str | None
    operator_name: str | None
    queued_when: datetime | None
    scheduled_when: datetime | None = None
    pid: int | None
    executor: str | None = None
    executor_config: str = "{}"
    dag_version: DagVersionResponse | None


class TaskInstanceHistoryCollectionResponse(Schema):
    task_instances: list[TaskInstanceHistoryResponse]
    total_entries: int


class PatchTaskInstanceBody(Body):
    new_state: Literal["success", "failed"] | None = None
    note: str | None = Field(default=None, max_length=1000)
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False


class ClearTaskInstancesBody(Body):
    dry_run: bool = True
    start_date: datetime | None = None
    end_date: datetime | None = None
    only_failed: bool = True
    only_running: bool = False
    reset_dag_runs: bool = True
    # A task id (every instance of it) or a [task_id, map_index] pair (that instance only).
    task_ids: list[str | tuple[str, int]] | None = None
    dag_run_id: str | None = None
    include_upstream: bool = False
    include_downstream: bool = False
    include_future: bool = False
    include_past: bool = False
    run_on_latest_version: bool = False
    note: str | None = None
    prevent_running_task: bool = False


class StructuredLogMessage(Schema):
    timestamp: datetime | None = None
    event: str


class TaskInstancesLogResponse(Schema):
    content: list[StructuredLogMessage]
    continuation_token: str | None = None


class XComResponse(Schema):
    key: str
    timestamp: datetime
    logical_date: datetime | None
    run_after: datetime
    map_index: int
    task_id: str
    dag_id: str
    run_id: str
    dag_display_name: str
    task_display_name: str


class XComResponseNative(XComResponse):
    value: Any


class XComCollectionResponse(Schema):
    xcom_entries: list[XComResponse]
    total_entries: int


class ImportErrorResponse(Schema):
    import_error_id: int
    timestamp: datetime
    filename: str
    bundle_name: str | None
    stack_trace: str


class ImportErrorCollectionResponse(Schema):
    import_errors: list[ImportErrorResponse]
    total_entries: int


class VariableBody(Body):
    key: str = Field(max_length=250)
    value: Any
    description: str | None = None


class VariablePatchBody(Body):
    key: str | None = Field(default=None, max_length=250)
    value: Any = None
    description: str | None = None


class VariableResponse(Schema):
    key: str
    value: str | None
    description: str | None
    is_encrypted: bool = False
    team_name: str | None = None


class VariableCollectionResponse(Schema):
    variables: list[VariableResponse]
    total_entries: int


class VersionInfo(Schema):
    version: str
    git_version: str | None


class BaseInfoResponse(Schema):
    status: str | None


class SchedulerInfoResponse(Schema):
    status: str | None
    latest_scheduler_heartbeat: str | None


class HealthInfoResponse(Schema):
    metadatabase: BaseInfoResponse
    scheduler: SchedulerInfoResponse
    triggerer: dict[str, str | None]
    dag_processor: dict[str, str | None] | None
