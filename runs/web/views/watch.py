"""Open pages notice new runs: a poll that costs one small query when nothing changed."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe
from django_htmx.http import trigger_client_event

from runs.templatetags.runs_tags import url_with
from runs.web.queries import runs_token
from runs.web.views.common import HtmxHttpRequest

WATCH_EVERY = "5s"


def watch_context(dag_id: str | None) -> dict[str, object]:
    """The watcher a page carries: what it last saw, and where to ask."""
    url = reverse("runs:dag_watch", args=(dag_id,)) if dag_id is not None else reverse("runs:watch")
    return {"watch_src": url_with(url, {"token": runs_token(dag_id)}), "watch_every": WATCH_EVERY}


@require_safe
@login_required
def watch(request: HtmxHttpRequest, dag_id: str | None = None) -> HttpResponse:
    """204 while the runs are as the page saw them; else the new watcher, and the page told to refresh."""
    token = runs_token(dag_id)
    if token is None:
        raise Http404(f"No DAG {dag_id!r}")
    if request.GET.get("token") == token:
        return HttpResponse(status=204)
    context = {"watch_src": url_with(request.path, {"token": token}), "watch_every": WATCH_EVERY}
    return trigger_client_event(render(request, "runs/_watch.html", context), "runs-changed")
