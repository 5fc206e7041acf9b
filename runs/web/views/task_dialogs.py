"""The clear and mark dialogs of a task in a run: one instance, a selection, or the whole mapped task."""
from __future__ import annotations

from django.db.models import Count
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import reverse
from django.views.decorators.http import require_safe

from runs.models import DagRun, TaskInstance, TaskInstanceState
from runs.models.taskinstance import path_label
from runs.services import plan_clear
from runs.templatetags.runs_tags import state_label
from runs.web.queries import parse_map_index
from runs.web.views.actions import MAX_SELECTION, clear_options
from runs.web.views.common import HtmxHttpRequest, get_dag_run_or_404, get_task_or_404, operator_required, reverse_with_query
from runs.web.views.dialogs import LISTED, ActionDialog, DialogOption, listed, render_dialog

S = TaskInstanceState
ACTIONS = ("clear", "clear_changed", S.SUCCESS, S.FAILED)
CLEAR_OPTIONS = (("downstream", "Downstream: the tasks after it"), ("upstream", "Upstream: the tasks before it"),
                 ("only_failed", "Only failed and upstream failed"))


def _plural(n: int, word: str = "instance") -> str:
    return f"{n:,} {word}{'s' if n != 1 else ''}"


def _clear_preview(run: DagRun, task_id: str, indexes: list[int] | None, options: dict[str, bool]) -> tuple[int, list[str]]:
    if run.serialized_dag.dag_data().get("nested"):
        # Nested mapping clears by path prefix (runs.services), downstream included as the DAG's levels say.
        qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0).exclude(state=S.REMOVED)
        n = (qs if indexes is None else qs.filter(map_index__in=indexes)).count()
        return n, [f"{task_id}: {_plural(n)}" + (", and the tasks after it under the same outer indexes" if options["downstream"] else "")]
    plan = plan_clear(dag_run=run, task_id=task_id, map_indexes=indexes, **options)
    counts = dict(TaskInstance.objects.filter(dag_run=run).filter(plan.where()).values_list("task_id").annotate(n=Count("id")))
    lines = [f"{t.describe()}: {_plural(counts.get(t.task_id, 0))}" + (" (expands again from its current inputs)" if t.reexpand else "")
             for t in plan.tasks]
    return sum(counts.values()), lines


def _mark_preview(run: DagRun, task_id: str, indexes: list[int], state: str) -> tuple[int, list[str]]:
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__in=indexes).exclude(state__in=[state, S.REMOVED])
    rows = list(qs.order_by("map_index").values_list("map_index", "rendered_map_index", "state")[:LISTED])
    lines = [f"{task_id} [{i}]" + (f" {name}" if name else "") + f" ({state_label(st)})" for i, name, st in rows]
    return (qs.count() if len(rows) == LISTED else len(rows)), lines


def _where_it_posts(request: HtmxHttpRequest, args: tuple[str, str, str], action: str, indexes: list[int] | None,
                    single: bool) -> tuple[str, str, list[tuple[str, str | int]]]:
    """The action's URL, the element its answer replaces, and the form's hidden fields. The
    selection travels with the dialog: in the POST, and in the dialog's own refresh when an option changes."""
    hidden: list[tuple[str, str | int]] = [("map_index", i) for i in indexes or []]
    if single and indexes:
        # The panel comes back on the tab (and try) it was showing.
        tab = {k: request.GET.get(k, "") for k in ("tab", "try")}
        url = "runs:task_instance_clear" if action == "clear" else "runs:task_instance_mark"
        return reverse_with_query(url, *args, indexes[0], query=tab), "instance-panel", hidden + ([] if action == "clear" else [("state", action)])
    if indexes:
        return reverse("runs:task_instances_action", args=args), "task-panel", [("action", action), *hidden]
    url = "runs:task_clear_mapped_changed" if action == "clear_changed" else "runs:task_clear_mapped"
    return reverse(url, args=args), "task-panel", []


def _describe(run: DagRun, task_id: str, action: str, indexes: list[int] | None, what: str,
              options: dict[str, bool]) -> tuple[int, list[str], str, str, str, str, list[DialogOption]]:
    """(total, lines, title, summary, button, css class, options) of the dialog for this action."""
    if action in (S.SUCCESS, S.FAILED):
        total, lines = _mark_preview(run, task_id, indexes or [], action)
        summary = f"{_plural(total)} will be marked {action}" + (" (the others already are)." if indexes and total < len(indexes) else ".")
        return total, lines, f"Mark {what} {action}", summary, f"Mark {action}", "ok" if action == S.SUCCESS else "danger", []
    if action == "clear_changed":
        total, lines = _clear_preview(run, task_id, None, {**options, "only_failed": True})
        summary = (f"{task_id} expands again from its current inputs; its successful items whose input is unchanged keep their "
                   f"result. {_plural(total)} that did not succeed are cleared now.")
        return (total, lines, f"Clear only new, changed and failed items of {task_id}", summary, "Clear", "warn",
                [DialogOption("downstream", CLEAR_OPTIONS[0][1], options["downstream"])])
    total, lines = _clear_preview(run, task_id, indexes, options)
    return (total, lines, f"Clear {what}", f"{_plural(total)} will be cleared and run again.", "Clear", "warn",
            [DialogOption(name, label, options[name]) for name, label in CLEAR_OPTIONS])


def _outer_dialog(request: HtmxHttpRequest, run: DagRun, task_id: str) -> HttpResponse:
    """Nested mapping: what clearing one outer index of a task (``fetch [2]``) touches."""
    raw = request.GET.get("outer", "")
    if not raw.isdigit() or len(raw) > 9:
        return HttpResponseBadRequest("outer must be an index (0, 1, 2, ...)")
    outer = int(raw)
    downstream = clear_options(request.GET)["downstream"]
    qs = TaskInstance.objects.filter(dag_run=run, task_id=task_id, map_index__gte=0, map_path__0=outer).exclude(state=S.REMOVED)
    rows = list(qs.order_by("map_path").values_list("map_path", "rendered_map_index", "state")[:LISTED])
    total = qs.count() if len(rows) == LISTED else len(rows)
    lines = [f"{task_id} " + path_label(path) + (f" {name}" if name else "") + f" ({state_label(st)})"
             for path, name, st in rows]
    if downstream:
        lines.append(f"and the tasks after {task_id} under [{outer}] inside its groups, and every task after the groups")
    args = (run.dag_id, run.run_id, task_id)
    shown, more = listed(lines)
    return render_dialog(request, ActionDialog(
        title=f"Clear {task_id} [{outer}]", summary=f"{_plural(total)} under [{outer}] will be cleared and run again; the other "
        "outer indexes keep theirs.", lines=shown, more=more, post_url=reverse("runs:task_clear_outer", args=args),
        dialog_url=reverse_with_query("runs:task_action_dialog", *args, query={"action": "clear_outer", "outer": outer}),
        target="task-panel", button="Clear", button_class="warn",
        back_url=reverse_with_query("runs:grid", run.dag_id, query={"run_id": run.run_id, "task_id": task_id}),
        options=[DialogOption("downstream", CLEAR_OPTIONS[0][1], downstream)], hidden=[("outer", outer)], nothing=total == 0))


@require_safe
@operator_required
def task_action_dialog(request: HtmxHttpRequest, dag_id: str, run_id: str, task_id: str) -> HttpResponse:
    """What a clear or mark of one instance, a selection or the whole task touches, before it is done."""
    run = get_dag_run_or_404(dag_id, run_id)
    get_task_or_404(run, task_id)
    if request.GET.get("action") == "clear_outer":
        return _outer_dialog(request, run, task_id)
    action, raw = request.GET.get("action", "clear"), request.GET.getlist("map_index")
    parsed = [parse_map_index(v) for v in raw]
    if action not in ACTIONS or len(raw) > MAX_SELECTION or None in parsed or (action in (S.SUCCESS, S.FAILED) and not raw):
        return HttpResponseBadRequest("action must be clear, clear_changed, success or failed, marks with map indexes")
    # "Clear only new, changed and failed" is about the whole task: a selection does not narrow it.
    indexes = (sorted({i for i in parsed if i is not None}) or None) if action != "clear_changed" else None
    single = request.GET.get("instance") == "1" and indexes is not None and len(indexes) == 1
    args = (dag_id, run_id, task_id)
    what = f"{task_id} [{indexes[0]}]" if single and indexes else (f"{_plural(len(indexes), 'selected instance')} of {task_id}" if indexes else task_id)
    total, lines, title, summary, button, css, opts = _describe(run, task_id, action, indexes, what, clear_options(request.GET))
    post, target, hidden = _where_it_posts(request, args, action, indexes, single)
    shown, more = listed(lines)
    dialog_query = {"action": action, "instance": "1" if single else "", "tab": request.GET.get("tab", ""), "try": request.GET.get("try", "")}
    return render_dialog(request, ActionDialog(
        title=title, summary=summary, lines=shown, more=more, post_url=post,
        dialog_url=reverse_with_query("runs:task_action_dialog", *args, query=dialog_query), target=target, button=button,
        button_class=css, back_url=reverse_with_query("runs:grid", dag_id, query={"run_id": run_id, "task_id": task_id}),
        options=opts, hidden=hidden, nothing=total == 0))
