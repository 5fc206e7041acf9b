"""The Graph view: a DAG's layout drawn once by Graphviz, coloured per run.

The Graph view's layout depends only on the DAG's structure, so ``dot`` runs once per DAG
version (``SerializedDag.dag_hash``) and its SVG is kept as a *template* in
``VAR_DIR/graph_cache/``, a file every web process shares. The template carries placeholders
(``@@S3@@`` the state of task 3 in ``task_order``, ``@@N3@@`` its instance count, ...), and a
request only substitutes them with the selected run's values: no ``dot`` per request.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import graphviz
from django.conf import settings
from django.utils.html import escape

from dagsapp.serialization import ChildRef, DagData
from runs.models import DagRun, TaskInstanceState
from runs.web.queries import Cell, grid_cells, tolerated_cells

S = TaskInstanceState

# Bump when the drawing changes, so templates cached by an older version are not reused.
LAYOUT_VERSION = 6
FONT = "Helvetica,Arial,sans-serif"

_PLACEHOLDER = re.compile(r"@@([SNTUPGHVC])(\d+)@@")


class GraphvizMissing(RuntimeError):
    """``dot`` is not installed, and this DAG version's layout is not cached yet."""


# ---------------------------------------------------------------------------------------------
# Layout: once per DAG version


def cache_dir() -> Path:
    # Read at call time: tests point VAR_DIR at a temporary folder.
    return Path(settings.VAR_DIR) / "graph_cache"


def _cache_path(dag_hash: str, collapsed: frozenset[str] = frozenset()) -> Path:
    if not re.fullmatch(r"[0-9a-f]{1,64}", dag_hash):
        raise ValueError(f"dag_hash must be hexadecimal, not {dag_hash!r}")
    # One layout per set of collapsed groups, named by a hash of it (group ids are not file names).
    suffix = "-c" + hashlib.sha256("\n".join(sorted(collapsed)).encode()).hexdigest()[:16] if collapsed else ""
    return cache_dir() / f"{dag_hash}{suffix}-v{LAYOUT_VERSION}.svg"


def group_order(data: DagData) -> list[str]:
    """The DAG's task groups in a fixed order: group j is ``g<j>`` in the layout."""
    return sorted(data.get("task_groups", {}))


def group_tasks(data: DagData, group_id: str) -> list[str]:
    """Every task inside a group, its inner groups' included."""
    out: list[str] = []
    for child in data["task_groups"][group_id]["children"]:
        if child["type"] == "task":
            out.append(child["id"])
        elif child["id"] in data["task_groups"]:
            out.extend(group_tasks(data, child["id"]))
    return out


def layout_template(*, dag_hash: str, data: DagData, collapsed: frozenset[str] = frozenset()) -> str:
    """This DAG version's SVG with placeholders, from the cache or drawn (and cached) now.

    Two processes drawing the same version at once both run ``dot`` and write the same bytes;
    the rename makes each write atomic, so a reader never sees half a file.
    """
    collapsed = frozenset(g for g in collapsed if g in data["task_groups"])
    path = _cache_path(dag_hash, collapsed)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        pass
    svg = _templatize(_run_dot(dot_source(data, collapsed)), data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(svg)
    os.replace(tmp, path)
    return svg


def _text(value: object) -> str:
    """A label or id from the DAG as a quoted DOT string, shown literally.

    python-graphviz writes a string that starts with '<' and ends with '>' unquoted, as an
    HTML-like label, which can close it and add statements to the graph (a node whose link
    runs script); and Graphviz reads backslashes in labels and ids as escapes (``\\N``,
    or one that swallows the closing quote). ``graphviz.escape`` marks the string as not HTML and
    doubles its backslashes, so it is always quoted and means itself.
    """
    text: str = graphviz.escape(str(value))
    return text


def dot_source(data: DagData, collapsed: frozenset[str] = frozenset()) -> graphviz.Digraph:
    """The DAG as a Graphviz digraph: one node per task (named ``t<i>`` after its position in
    ``task_order``, so no task id has to survive DOT quoting), one cluster per task group, and
    one node ``g<j>`` for a group in ``collapsed`` (its tasks' edges go to it). Every text from
    the DAG goes through ``_text``."""
    order: list[str] = data["task_order"]
    position = {task_id: i for i, task_id in enumerate(order)}
    group_position = {group_id: j for j, group_id in enumerate(group_order(data))}
    # The node that stands for each task: its own, or that of the outermost collapsed group it is in.
    shown = {task_id: f"t{i}" for task_id, i in position.items()}
    g = graphviz.Digraph(
        name=_text(data["dag_id"]),
        graph_attr={"rankdir": "LR", "nodesep": "0.3", "ranksep": "0.5", "fontname": FONT, "fontsize": "11", "bgcolor": "transparent"},
        node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "white", "fontname": FONT, "fontsize": "11",
                   "height": "0.35", "margin": "0.12,0.04"},
        edge_attr={"arrowsize": "0.6", "color": "#888888"},
    )

    def add_task(graph: graphviz.Digraph, task_id: str) -> None:
        i = position[task_id]
        task = data["tasks"][task_id]
        label = str(task["label"])
        if task["mapping"] is not None:
            # Wide enough for a count of a few digits; the real count is substituted per run.
            label += f" [@@N{i}@@]"
        graph.node(f"t{i}", label=_text(label), id=_text(f"node-{task_id}"), URL=f"@@U{i}@@",
                   **{"class": f"task state-@@S{i}@@"})

    def _first_task(children: list[ChildRef]) -> str | None:
        for child in children:
            if child["type"] == "task" and child["id"] in position:
                return child["id"]
            if child["type"] == "group" and child["id"] in data["task_groups"]:
                inner = _first_task(data["task_groups"][child["id"]]["children"])
                if inner is not None:
                    return inner
        return None

    def add_children(graph: graphviz.Digraph, children: list[ChildRef]) -> None:
        for child in children:
            if child["type"] == "task":
                add_task(graph, child["id"])
                continue
            group = data["task_groups"][child["id"]]
            label = str(group["label"])
            first = _first_task(group["children"])
            if group.get("is_mapped") and first is not None:
                # A mapped group says so, with its count of indexes: its first task's, substituted per run.
                label += f" [mapped × @@N{position[first]}@@]"
            j = group_position[child["id"]]
            if child["id"] in collapsed:
                # One node for the whole group, coloured by its tasks; a click expands it.
                for task_id in group_tasks(data, child["id"]):
                    shown[task_id] = f"g{j}"
                graph.node(f"g{j}", label=_text(f"▸ {label}"), id=_text(f"group-node-{child['id']}"), URL=f"@@V{j}@@",
                           shape="box3d", **{"class": f"task group-node state-@@G{j}@@"})
                continue
            with graph.subgraph(name=_text(f"cluster_{child['id']}")) as sub:
                # The group's label collapses it (a link of its own, not the tasks').
                sub.attr(label=_text(f"▾ {label}"), id=_text(f"group-{child['id']}"), style="rounded,dashed", color="#999999",
                         fontcolor="#555555", labeljust="l", URL=f"@@C{j}@@", tooltip=_text(f"Collapse {child['id']}"))
                sub.attr(**{"class": "group"})
                add_children(sub, group["children"])

    add_children(g, data["root_children"])
    edges: set[tuple[str, str]] = set()
    for task_id in order:
        for downstream in data["tasks"][task_id]["downstream"]:
            edge = (shown[task_id], shown[downstream])
            if edge[0] != edge[1] and edge not in edges:
                edges.add(edge)
                g.edge(*edge)
    return g


def _run_dot(source: graphviz.Digraph) -> str:
    if shutil.which("dot") is None:
        raise GraphvizMissing("Graphviz 'dot' is not installed")
    try:
        svg: str = source.pipe(format="svg", encoding="utf-8")
        return svg
    except graphviz.ExecutableNotFound:
        raise GraphvizMissing("Graphviz 'dot' is not installed") from None


_XML_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CLUSTER_TITLE = re.compile(r"<title>cluster_(.*?)</title>")
_NODE_TITLE = re.compile(r"<title>t(\d+)</title>")
_GROUP_NODE_TITLE = re.compile(r"<title>g(\d+)</title>")
_EDGE_TITLE = re.compile(r"<title>([tg])(\d+)-&gt;([tg])(\d+)</title>")
_NODE_LINK = re.compile(r'<a xlink:href="@@U(\d+)@@" xlink:title="[^"]*">')


def _templatize(svg: str, data: DagData) -> str:
    """dot's SVG made into an inline-SVG template: prologue and comments dropped, node titles
    (tooltips) and links made placeholders, edge titles named after the tasks."""
    order: list[str] = data["task_order"]
    groups = group_order(data)

    def name(kind: str, i: str) -> str:
        return escape(order[int(i)] if kind == "t" else groups[int(i)])

    # dot writes "-" as "&#45;"; plain hyphens keep ids such as node-add easy to select.
    svg = _COMMENT.sub("", _XML_PROLOGUE.sub("", svg, count=1)).replace("&#45;", "-")
    # Drawn at dot's size; CSS shrinks a wide DAG to the page (the viewBox keeps the proportions).
    # A group of links (one per task), named for assistive technology; role="img" would hide them.
    svg = svg.replace("<svg ", f'<svg class="dag-graph" role="group" aria-label="Graph of the tasks of {escape(data.get("dag_id", "the DAG"))}" ', 1)
    svg = _EDGE_TITLE.sub(lambda m: f"<title>{name(m[1], m[2])} → {name(m[3], m[4])}</title>", svg)
    svg = _CLUSTER_TITLE.sub(r"<title>\1</title>", svg)
    svg = _NODE_TITLE.sub(r"<title>@@T\1@@</title>", svg)
    svg = _GROUP_NODE_TITLE.sub(r"<title>@@H\1@@</title>", svg)
    # A click loads the details panel with htmx; the href keeps the link usable without
    # JavaScript and in a new tab. htmx does not cancel the navigation of an SVG <a>, so
    # static/js/app.js does, and triggers "dagsapp-open", except when a modifier key asks for a
    # new tab or window. No handler or trigger filter here: both are script the page's
    # Content-Security-Policy refuses.
    svg = _NODE_LINK.sub(
        r'<a href="@@U\1@@" xlink:href="@@U\1@@" hx-get="@@U\1@@" hx-target="#details" hx-push-url="@@P\1@@"'
        r' hx-trigger="dagsapp-open" data-open-in-panel="">',
        svg,
    )
    return svg.strip() + "\n"


# ---------------------------------------------------------------------------------------------
# Per run: states and counts, substituted into the template


def run_cells(dag_run: DagRun | None) -> dict[str, Cell] | None:
    """task_id -> Cell (counts per state) for the run, from the Grid's one grouped query: the
    Graph colours and counts with exactly the Grid's rules. None when there is no run."""
    if dag_run is None:
        return None
    cells = grid_cells([dag_run])
    # Judged with the run's own DAG version (loaded with the run); no query for a mapped task.
    for key, counts in tolerated_cells(dag_run.serialized_dag.dag_data(), [dag_run], cells).items():
        if key in cells:
            cells[key].tolerated = counts
    return {task_id: cell for (_run, task_id), cell in cells.items()}


def render_graph(template: str, *, order: list[str], cells: Mapping[str, Cell] | None,
                 panel_urls: Mapping[str, str], push_urls: Mapping[str, str], data: DagData | None = None,
                 toggle_urls: Mapping[str, str] | None = None) -> str:
    """The template with this run's values (``cells`` None: no run); every value is escaped here.
    ``toggle_urls``: group id -> the Graph's URL with that group collapsed or expanded."""
    empty = Cell()
    groups = group_order(data) if data is not None else []

    def group_cell(group_id: str) -> Cell:
        cell = Cell()
        for task_id in group_tasks(data, group_id) if data is not None else []:
            cell.add((cells or {}).get(task_id, empty))
        return cell

    def value(m: re.Match[str]) -> str:
        kind, i = m[1], int(m[2])
        if kind in "GHVC":
            group_id = groups[i]
            if kind == "G":
                return escape(group_cell(group_id).state or S.NONE) if cells is not None else S.NONE
            if kind == "H":
                tip = group_cell(group_id).tooltip if cells is not None else ""
                return escape(f"{group_id} (collapsed): {tip or 'no instances'}")
            return escape((toggle_urls or {}).get(group_id, "#"))
        task_id = order[i]
        cell = (cells or {}).get(task_id, empty)
        if kind == "S":
            return escape(cell.state or S.NONE)
        if kind == "N":
            # `task [ ]` until the task is expanded in this run (or when there is no run).
            n = cell.mapped_count if cells is not None else None
            return " " if n is None else escape(str(n))
        if kind == "T":
            return escape(f"{task_id}: {cell.tooltip or 'no instances'}")
        if kind == "U":
            return escape(panel_urls.get(task_id, "#"))
        return escape(push_urls.get(task_id, "#"))

    return _PLACEHOLDER.sub(value, template)
