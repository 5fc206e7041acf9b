from __future__ import annotations

from django.urls import URLPattern, URLResolver, path, register_converter

from runs.web.views import (
    actions,
    api,
    audit,
    auth,
    browse,
    code,
    dags,
    durations,
    gantt,
    graph,
    grid,
    health,
    preferences,
    runs,
    task_dialogs,
    task_instances,
    variables,
    watch,
)
from runs.web.views.common import MapIndexConverter

app_name = "runs"

register_converter(MapIndexConverter, "mapidx")

RUN = "dags/<str:dag_id>/runs/<str:run_id>"
TASK = f"{RUN}/tasks/<str:task_id>"
TI = f"{TASK}/mapped/<mapidx:map_index>"
API_TASK = f"api/{TASK}"

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", auth.login_view, name="login"),
    path("logout/", auth.logout_view, name="logout"),
    path("health", health.health, name="health"),
    path("preferences/time-zone/", preferences.set_time_zone, name="set_time_zone"),
    path("preferences/time-zones/", preferences.time_zone_names, name="time_zone_names"),
    path("", dags.dag_list, name="dag_list"),
    path("watch/", watch.watch, name="watch"),
    path("dags/<str:dag_id>/watch/", watch.watch, name="dag_watch"),
    path("dags/<str:dag_id>/grid/", grid.grid, name="grid"),
    path("dags/<str:dag_id>/graph/", graph.dag_graph, name="graph"),
    path("dags/<str:dag_id>/trigger/", dags.dag_trigger, name="dag_trigger"),
    path("dags/<str:dag_id>/pause/", dags.dag_pause, name="dag_pause"),
    path("dags/<str:dag_id>/audit/", audit.audit_log, name="dag_audit"),
    path("audit/", audit.audit_log, name="audit_log"),
    path("variables/", variables.variable_list, name="variable_list"),
    path("variables/new/", variables.variable_create, name="variable_create"),
    path("variables/<int:pk>/edit/", variables.variable_edit, name="variable_edit"),
    path("variables/<int:pk>/delete/", variables.variable_delete, name="variable_delete"),
    path("dags/<str:dag_id>/code/", code.dag_code, name="dag_code"),
    path("runs/", browse.run_list, name="run_list"),
    path("task-instances/", browse.task_instance_list, name="task_instance_list"),
    path(f"{RUN}/", runs.run_panel, name="run_panel"),
    path(f"{RUN}/conf/", runs.run_conf, name="run_conf"),
    path(f"{RUN}/gantt/", gantt.run_gantt, name="run_gantt"),
    path(f"{RUN}/action/", runs.run_action_dialog, name="run_action_dialog"),
    path(f"{RUN}/clear/", runs.run_clear, name="run_clear"),
    path(f"{RUN}/mark/", runs.run_mark, name="run_mark"),
    path(f"{TASK}/", task_instances.task_panel, name="task_panel"),
    path(f"{TASK}/durations/", durations.task_durations, name="task_durations"),
    path(f"{TASK}/suggestions/", task_instances.task_instance_suggestions, name="task_instance_suggestions"),
    path(f"{TASK}/action/", task_dialogs.task_action_dialog, name="task_action_dialog"),
    path(f"{TASK}/clear/", actions.task_clear_mapped, name="task_clear_mapped"),
    path(f"{TASK}/clear-changed/", actions.task_clear_mapped_changed, name="task_clear_mapped_changed"),
    path(f"{TASK}/clear-outer/", actions.task_clear_outer, name="task_clear_outer"),
    path(f"{TASK}/selection/", actions.task_instances_action, name="task_instances_action"),
    path(f"{TI}/", task_instances.task_instance, name="task_instance"),
    path(f"{TI}/log/", task_instances.task_instance_log, name="task_instance_log"),
    path(f"{TI}/xcom/", task_instances.task_instance_xcom, name="task_instance_xcom"),
    path(f"{TI}/clear/", actions.task_instance_clear, name="task_instance_clear"),
    path(f"{TI}/mark/", actions.task_instance_mark, name="task_instance_mark"),
    path(f"{API_TASK}/mapped", api.api_mapped_instances, name="api_mapped_instances"),
    path(f"{API_TASK}/mapped/<mapidx:map_index>", api.api_mapped_instance, name="api_mapped_instance"),
    path(f"{API_TASK}/mapped/<mapidx:map_index>/logs/<int:try_number>", api.api_task_instance_log, name="api_task_instance_log"),
]
