"""The DAG list, the trigger form, and pausing a DAG."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.http import HttpResponseClientRedirect

from runs.models import DagModel, DagRunState
from runs.services import DagRunError, ParamsError, RunIdError, check_params, create_dag_run, parse_conf, set_dag_paused
from runs.templatetags.runs_tags import url_with
from runs.web.browse import all_tags, dags_page
from runs.web.deferrals import deferred_without_triggerer
from runs.web.queries import import_errors, last_runs_by_dag
from runs.web.trigger_form import ParamField, param_fields, prefill, read_fields, show_errors
from runs.web.views.common import HtmxHttpRequest, get_dag_or_404, int_param, is_operator, operator_required, reverse_with_query
from runs.web.views.watch import watch_context

RUNS_PER_DAG = 10
# The last run's state a DAG can be filtered by; "none": never run.
LAST_RUN_STATES = [*DagRunState.values, "none"]


@require_safe
@login_required
def dag_list(request: HtmxHttpRequest) -> HttpResponse:
    """Active DAGs, searched by id (``q``), filtered by ``tag`` and last run ``state``, ``page`` by page: all in the URL."""
    q, tag, state = (request.GET.get(name, "").strip()[:250] for name in ("q", "tag", "state"))
    state = state if state in LAST_RUN_STATES else ""
    page = dags_page(q=q, tag=tag, last_state=state, page=int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6))
    runs = last_runs_by_dag([d.dag_id for d in page.rows], RUNS_PER_DAG)
    rows = [{"dag": d, "runs": runs.get(d.dag_id, []), "data": d.latest_serialized.dag_data() if d.latest_serialized else None}
            for d in page.rows]
    base = reverse("runs:dag_list")
    params = {"q": q, "tag": tag, "state": state}
    refresh_url = url_with(base, params, page=page.number if page.number > 1 else "")
    context = {
        "rows": rows, "page": page, "params": params, "filtered": any(params.values()), "tags": all_tags(), "list_url": base,
        "last_run_states": [(s, s.replace("_", " ")) for s in LAST_RUN_STATES],
        "refresh_url": refresh_url,
        "prev_url": url_with(base, params, page=page.number - 1) if page.number > 1 else "",
        "next_url": url_with(base, params, page=page.number + 1) if page.has_next else "",
        "import_errors": import_errors(), "deferred_without_triggerer": deferred_without_triggerer(),
        "can_operate": is_operator(request.user),
    }
    if request.htmx:
        response = render(request, "runs/dag_list.html#dag-table", context)
        if request.htmx.trigger == "dag-filters":
            # The filter form's address without its empty fields, for the history and a shared link.
            response["HX-Push-Url"] = refresh_url
        return response
    return render(request, "runs/dag_list.html", {**context, **watch_context(None)})


def _logical_date(raw: str) -> datetime | None:
    """The form's ``datetime-local`` (or an ISO 8601 time), read as UTC when it names no zone."""
    value = datetime.fromisoformat(raw.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


FIELD_ERRORS = "Some values are not valid: see beside each field."


@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def dag_trigger(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    """GET: the form, one field per Param, defaults filled in. POST: a run from it; on any error
    the form again with each message beside its field, and nothing created."""
    dag = get_dag_or_404(dag_id)
    fields = param_fields(dag.data)
    if request.method != "POST":
        return _trigger_page(request, dag, fields, {"conf": _prefilled_conf(fields, request.GET.get("conf", ""))})
    form, conf, logical_date = _read_trigger_form(request, dag, fields)
    if form["errors"]:
        return _trigger_page(request, dag, fields, form, status=400)
    try:
        run = create_dag_run(dag_id=dag.dag_id, conf=conf, run_id=form["run_id"].strip() or None, logical_date=logical_date)
    except ParamsError as exc:
        show_errors(fields, exc.errors)
        form["errors"] = {"form": FIELD_ERRORS}
    except RunIdError as exc:
        form["errors"] = {"run_id": str(exc)}
    except DagRunError as exc:
        form["errors"] = {"form": str(exc)}
    else:
        messages.success(request, f"Triggered run {run.run_id}.")
        # The Grid with the new run selected (its panel open).
        url = reverse_with_query("runs:grid", dag.dag_id, query={"run_id": run.run_id})
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _trigger_page(request, dag, fields, form, status=400)


def _read_trigger_form(request: HtmxHttpRequest, dag: DagModel, fields: list[ParamField]) -> tuple[dict[str, Any], dict[str, Any], datetime | None]:
    """The posted form (its text, and ``errors`` by field), the conf and the logical date it gives."""
    form: dict[str, Any] = {key: request.POST.get(key, "") for key in ("conf", "run_id", "logical_date")}
    errors: dict[str, str] = {}
    conf = read_fields(fields, request.POST)
    try:
        conf.update(parse_conf(form["conf"]))  # the advanced JSON: extra keys, or values that win over the fields
    except DagRunError as exc:
        errors["conf"] = str(exc)
    logical_date = None
    if form["logical_date"].strip():
        try:
            logical_date = _logical_date(form["logical_date"])
        except ValueError:
            errors["logical_date"] = "not a date and time (YYYY-MM-DDTHH:MM, UTC)"
    if any(f.error for f in fields):
        errors["form"] = FIELD_ERRORS
    if errors:
        # Every mistake at once: the fields that did read are checked against their schema too.
        try:
            check_params(dag.data, conf)
        except ParamsError as exc:
            show_errors(fields, exc.errors)
    form["errors"] = errors
    return form, conf, logical_date


def _prefilled_conf(fields: list[ParamField], raw: str) -> str:
    """``?conf=`` (the run panel's "Trigger again with this conf"): its Params into their fields,
    the other keys left in the raw JSON. Text that is no conf is shown as it is, to be fixed."""
    try:
        conf = parse_conf(raw)
    except DagRunError:
        return raw
    rest = prefill(fields, conf)
    return json.dumps(rest, indent=2) if rest else ""


def _trigger_page(request: HtmxHttpRequest, dag: DagModel, fields: list[ParamField], form: dict[str, Any], *,
                  status: int = 200) -> HttpResponse:
    data = dag.data
    extra_keys = sorted(set(data["params"]) - {f.name for f in fields})
    context = {"dag": dag, "data": data, "fields": fields, "form": form, "errors": form.get("errors", {}),
               # Params given as plain values (no Param): their defaults, overridable in the JSON.
               "plain_params": {k: data["params"][k] for k in extra_keys},
               "conf_open": bool(form.get("conf")) or not fields or "conf" in form.get("errors", {})}
    return render(request, "runs/trigger.html", context, status=status)


@require_POST
@operator_required
def dag_pause(request: HtmxHttpRequest, dag_id: str) -> HttpResponse:
    """Pause (``is_paused=true``) or unpause (``false``): an explicit target, so a double click or
    two users at once end where they meant, never toggled back."""
    dag = get_dag_or_404(dag_id)
    target = request.POST.get("is_paused")
    if target not in ("true", "false"):
        return HttpResponseBadRequest("is_paused must be true or false")
    set_dag_paused(dag_id=dag.dag_id, is_paused=target == "true")
    dag.is_paused = target == "true"
    if request.htmx:
        return render(request, "runs/_pause_toggle.html", {"dag": dag, "can_operate": True})
    messages.success(request, f"DAG {dag.dag_id} {'paused' if dag.is_paused else 'unpaused'}.")
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return redirect(back)
    return redirect("runs:grid", dag.dag_id)
