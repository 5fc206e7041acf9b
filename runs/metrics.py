"""Prometheus metrics, with Airflow's names where Airflow has one (its statsd names with dots as
underscores and an ``airflow_`` prefix, as its Prometheus mapping writes them) and ours for mapping.

Every process of a host (web server, scheduler, DAG processor, each Celery pool process) writes
its counters to files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess
mode; settings.py points it at ``VAR_DIR/prometheus`` unless the environment names one), and
``/metrics`` on that host adds them up. Gauges of what is in the database (queued and running
instances, import errors) are read from it when scraped, so every web server reports the same.
Counters are incremented after the transaction that did the work commits, so a pass that rolls
back counts nothing.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from runs.models import DagImportError, Job, JobType, TaskInstance, TaskInstanceState

S = TaskInstanceState

SCHEDULER_HEARTBEAT = Counter("airflow_scheduler_heartbeat", "Scheduler loop passes (Airflow: scheduler_heartbeat)")
TI_FINISH = Counter("airflow_ti_finish", "Task instance tries that ended, by state (Airflow: ti.finish.<dag>.<task>.<state>)",
                    ["dag_id", "task_id", "state"])
DAGRUN_DURATION = Histogram("airflow_dagrun_duration", "Seconds from start to end of finished DAG runs "
                            "(Airflow: dagrun.duration.<state>.<dag_id>)", ["dag_id", "state"],
                            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, float("inf")))
DAG_PROCESSING_LAST_DURATION = Gauge("airflow_dag_processing_last_duration", "Seconds the last parse of a DAG file took "
                                     "(Airflow: dag_processing.last_duration.<file>)", ["file_name"], multiprocess_mode="mostrecent")
DAG_PROCESSING_TOTAL_PARSE_TIME = Gauge("airflow_dag_processing_total_parse_time", "Seconds the last pass over changed DAG "
                                        "files took (Airflow: dag_processing.total_parse_time)", multiprocess_mode="mostrecent")
MAPPING_EXPANSIONS = Counter("dagsapp_mapping_expansions", "Expansions of a mapped task into its instances", ["dag_id", "task_id"])
MAPPING_INSTANCES_CREATED = Histogram("dagsapp_mapping_instances_created", "Instances created by one expansion",
                                      buckets=(0, 1, 10, 100, 1000, 10_000, 100_000, float("inf")))
MAPPING_EXPANSION_DURATION = Histogram("dagsapp_mapping_expansion_duration", "Seconds one expansion took (instances inserted "
                                       "and named)", buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, float("inf")))


def after_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(fn)


def ti_finished(*, dag_id: str, task_id: str, state: str) -> None:
    after_commit(lambda: TI_FINISH.labels(dag_id=dag_id, task_id=task_id, state=state).inc())


def dag_run_finished(*, dag_id: str, state: str, seconds: float | None) -> None:
    if seconds is not None:
        after_commit(lambda: DAGRUN_DURATION.labels(dag_id=dag_id, state=state).observe(seconds))


def expanded(*, dag_id: str, task_id: str, created: int, seconds: float) -> None:
    def record() -> None:
        MAPPING_EXPANSIONS.labels(dag_id=dag_id, task_id=task_id).inc()
        MAPPING_INSTANCES_CREATED.observe(created)
        MAPPING_EXPANSION_DURATION.observe(seconds)

    after_commit(record)


class DatabaseGauges(Collector):
    """What the database holds, read when scraped (one grouped query), the same on every host."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = dict(TaskInstance.objects.filter(state__in=[S.QUEUED, S.RUNNING, S.SCHEDULED]).values_list("state")
                      .annotate(n=Count("id")).values_list("state", "n"))
        yield GaugeMetricFamily("airflow_executor_queued_tasks", "Task instances queued (Airflow: executor.queued_tasks)",
                                value=counts.get(S.QUEUED, 0))
        yield GaugeMetricFamily("airflow_executor_running_tasks", "Task instances running (Airflow: executor.running_tasks)",
                                value=counts.get(S.RUNNING, 0))
        yield GaugeMetricFamily("airflow_scheduler_tasks_scheduled", "Task instances scheduled, waiting to be queued",
                                value=counts.get(S.SCHEDULED, 0))
        yield GaugeMetricFamily("airflow_dag_processing_import_errors", "DAG files that failed to import "
                                "(Airflow: dag_processing.import_errors)", value=DagImportError.objects.count())
        yield from _triggerer_gauges()


def _triggerer_gauges() -> Iterator[GaugeMetricFamily]:
    """Airflow's triggerer gauges, over the triggerers alive (a heartbeat within the adoption
    timeout): the triggers they run, and the room left under their capacities. One query."""
    alive = timezone.now() - timedelta(seconds=float(settings.TRIGGERER_HEARTBEAT_TIMEOUT_SEC))
    jobs = list(Job.objects.filter(job_type=JobType.TRIGGERER, end_date__isnull=True, heartbeat_at__gte=alive)
                .annotate(n=Count("triggers")).values_list("capacity", "n"))
    running = sum(n for _capacity, n in jobs)
    yield GaugeMetricFamily("airflow_triggers_running", "Triggers running in the triggerers alive (Airflow: triggers.running)",
                            value=running)
    yield GaugeMetricFamily("airflow_triggerer_capacity_left", "Triggers the triggerers alive can still take "
                            "(Airflow: triggerer.capacity_left)", value=sum(max(0, (c or 0) - n) for c, n in jobs))


def host_registry() -> CollectorRegistry:
    """The counters of every process of this host (the files under PROMETHEUS_MULTIPROC_DIR)."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def render() -> bytes:
    """Every process's metrics on this host, and the database's gauges, in Prometheus' text format."""
    registry = host_registry()
    registry.register(DatabaseGauges())
    return generate_latest(registry)
