"""The Variables page: everyone reads, Operators and Admins create, change and delete (as
Airflow's Op role; the REST API's Variables follow the same rule). Values of secret-looking keys
(dagsapp/secrets.py's rule, the one names and logs use) are masked for everyone, in the list and
in the edit form; editing such a Variable never shows its value: left blank, it is kept."""
from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_safe

from dagsapp.jsonvalues import json_problem
from dagsapp.secrets import MASK, SECRET_NAME
from runs.models import Variable
from runs.services import VariableError, create_variable, delete_variable, update_variable
from runs.web.views.common import HtmxHttpRequest, int_param, is_operator, operator_required

PAGE_SIZE = 50
SHOWN_CHARS = 300


def is_secret_key(key: str) -> bool:
    return SECRET_NAME.search(key) is not None


def shown_value(var: Variable) -> str:
    """What a page shows of a value: masked for a secret-looking key, else its JSON, shortened."""
    if is_secret_key(var.key):
        return MASK
    text = json.dumps(var.val, ensure_ascii=False)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


class VariableForm(forms.Form):
    key = forms.CharField(max_length=250, strip=True)
    value = forms.CharField(required=False, strip=False, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
                            help_text='JSON: a number, true/false, null, a list, an object, or text in double quotes ("eu").')
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, secret_kept: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Editing a secret: the value is never sent to the browser; blank keeps it.
        self.secret_kept = secret_kept

    def clean_value(self) -> Any:
        raw: str = self.cleaned_data["value"]
        if not raw.strip():
            if self.secret_kept:
                return _KEEP
            raise forms.ValidationError("Enter a JSON value (text goes in double quotes).")
        try:
            value = json.loads(raw, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}). Text goes in double quotes: \"{raw.strip()[:40]}\".") from None
        except (ValueError, RecursionError):
            raise forms.ValidationError("Not a value JSON can store (NaN, Infinity, or nested too deeply).") from None
        problem = json_problem(value)
        if problem:
            raise forms.ValidationError(f"The value {problem}.")
        return value


_KEEP = object()


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def _get_variable_or_404(pk: int) -> Variable:
    var = Variable.objects.filter(pk=pk).first()
    if var is None:
        raise Http404(f"No Variable {pk}")
    return var


@require_safe
@login_required
def variable_list(request: HtmxHttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()
    qs = Variable.objects.order_by("key")
    if q:
        qs = qs.filter(key__icontains=q)
    page = Paginator(qs, PAGE_SIZE).get_page(int_param(request.GET.get("page"), default=1, minimum=1, maximum=10**6))
    rows = [{"var": v, "value": shown_value(v), "secret": is_secret_key(v.key)} for v in page.object_list]
    return render(request, "runs/variables.html", {"rows": rows, "page": page, "q": q, "can_operate": is_operator(request.user)})


@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def variable_create(request: HtmxHttpRequest) -> HttpResponse:
    form = VariableForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            var = create_variable(key=form.cleaned_data["key"], value=form.cleaned_data["value"],
                                  description=form.cleaned_data["description"])
        except VariableError as exc:
            form.add_error("key", str(exc))
        else:
            messages.success(request, f"Created Variable {var.key}.")
            return redirect("runs:variable_list")
    return render(request, "runs/variable_form.html", {"form": form, "var": None}, status=400 if form.errors else 200)


@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def variable_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    var = _get_variable_or_404(pk)
    secret = is_secret_key(var.key)
    initial = {"key": var.key, "description": var.description, "value": "" if secret else json.dumps(var.val, indent=2, ensure_ascii=False)}
    # The key is what DAGs read it by: it stays (create another Variable to rename).
    form = VariableForm(request.POST or None, initial=initial, secret_kept=secret)
    form.fields["key"].disabled = True
    if request.method == "POST" and form.is_valid():
        value = form.cleaned_data["value"]
        try:
            update_variable(var, value=None if value is _KEEP else value, set_value=value is not _KEEP,
                            description=form.cleaned_data["description"])
        except VariableError as exc:
            form.add_error("value", str(exc))
        else:
            messages.success(request, f"Saved Variable {var.key}.")
            return redirect("runs:variable_list")
    return render(request, "runs/variable_form.html", {"form": form, "var": var, "secret": secret}, status=400 if form.errors else 200)


@require_http_methods(["GET", "HEAD", "POST"])
@operator_required
def variable_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """GET asks (a page, no script), POST deletes."""
    var = _get_variable_or_404(pk)
    if request.method == "POST":
        delete_variable(var)
        messages.success(request, f"Deleted Variable {var.key}.")
        return redirect("runs:variable_list")
    return render(request, "runs/variable_delete.html", {"var": var, "value": shown_value(var)})
