"""Server-rendered confirmation dialogs: what an action will touch, listed before it is done."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpResponse
from django.shortcuts import render

from runs.web.views.common import HtmxHttpRequest

# The instances (or tasks) a dialog names before "and N more".
LISTED = 10


@dataclass(frozen=True)
class DialogOption:
    """A checkbox of the dialog; changing it shows the dialog again with what it then touches."""

    name: str
    label: str
    checked: bool


@dataclass(frozen=True)
class ActionDialog:
    title: str
    summary: str
    lines: list[str]
    more: int
    post_url: str
    # The dialog itself, asked again when an option changes.
    dialog_url: str
    # What the POST's answer replaces (an element's id, outerHTML).
    target: str
    button: str
    button_class: str
    back_url: str
    options: list[DialogOption] = field(default_factory=list)
    hidden: list[tuple[str, str | int]] = field(default_factory=list)
    nothing: bool = False


def listed(lines: list[str]) -> tuple[list[str], int]:
    return lines[:LISTED], max(0, len(lines) - LISTED)


def render_dialog(request: HtmxHttpRequest, dialog: ActionDialog) -> HttpResponse:
    """htmx: the dialog, shown as a modal by app.js; else a page with the dialog open, for browsers without JavaScript."""
    if request.htmx:
        return render(request, "runs/_action_dialog.html", {"dialog": dialog})
    return render(request, "runs/action_dialog_page.html", {"dialog": dialog, "standalone": True})
