"""One run: its conf on demand (and, for Operators, the run's own actions)."""
from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from runs.web.views.common import HtmxHttpRequest, get_dag_run_or_404


@require_safe
@login_required
def run_conf(request: HtmxHttpRequest, dag_id: str, run_id: str) -> HttpResponse:
    """htmx: the conf pretty-printed (its first characters when large); else the whole conf as JSON."""
    run = get_dag_run_or_404(dag_id, run_id)
    if not request.htmx:
        response = HttpResponse(json.dumps(run.conf, ensure_ascii=False), content_type="application/json")
        response["Content-Disposition"] = f'inline; filename="{dag_id}-conf.json"'
        return response
    text = json.dumps(run.conf, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    limit = settings.MAX_DISPLAY_CHARS
    context = {"run": run, "text": text[:limit], "size": len(text), "truncated": len(text) > limit, "limit": limit}
    return render(request, "runs/_conf.html#conf-pretty", context)
