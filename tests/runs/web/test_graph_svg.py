"""The Graph view's DOT source: every label and id reaches Graphviz quoted, never as DOT or an HTML-like label.

The DAG data here is built by hand, as a version stored before ids were validated could be.
"""

from __future__ import annotations

import re
from typing import Any

from runs.web import graph_svg

# python-graphviz writes a string that starts with '<' and ends with '>' unquoted (an HTML-like
# label): this one would close the label and add a node whose link runs script.
INJECTION = '<x>; evil [label="Open details" URL="javascript:alert(1)" shape=box]; foo=<y>'


def _data(*, group: str, task: str, label: str, dag_id: str = "d") -> Any:
    return {
        "dag_id": dag_id, "task_order": [task],
        "task_groups": {group: {"label": group, "children": [{"type": "task", "id": task}]}},
        "root_children": [{"type": "group", "id": group}],
        "tasks": {task: {"label": label, "mapping": None, "downstream": []}},
    }


class DotSourceTests:
    def test_it_draws_a_hostile_group_id_as_text_without_a_javascript_link(self) -> None:
        data = _data(group=INJECTION, task=f"{INJECTION}.a", label="a")
        svg = graph_svg._templatize(graph_svg._run_dot(graph_svg.dot_source(data)), data)
        assert not re.search(r"href=\"\s*javascript:", svg)
        # One node, ours, with our placeholder link, and the group's collapse link (our placeholder
        # too); the text is shown escaped, not dropped.
        ours = re.search(r'<a href="@@U0@@"[^>]*>', svg)
        links = re.findall(r"<a [^>]*>", svg)
        assert ours is not None and ours[0] in links and len(links) == 2
        assert all(link == ours[0] or link.startswith('<a xlink:href="@@C0@@" ') for link in links), links
        assert svg.count('class="node') == 1
        assert "&lt;x&gt;; evil [label=&quot;Open details&quot;" in svg

    def test_it_never_writes_a_label_or_id_unquoted(self) -> None:
        source = graph_svg.dot_source(_data(group="<g>", task="<t>", label="<l>", dag_id="<d>")).source
        assert not re.search(r"=<|(graph|subgraph) <", source), source
        assert '"<l>"' in source and '"group-<g>"' in source and '"node-<t>"' in source

    def test_it_shows_backslashes_and_escapes_literally(self) -> None:
        # "\N" would show the node's name, and a trailing backslash would escape the closing quote.
        data = _data(group="g\\", task="t", label="x\\N y\\")
        svg = graph_svg._templatize(graph_svg._run_dot(graph_svg.dot_source(data)), data)
        assert ">x\\N y\\</text>" in svg
        assert ">▾ g\\</text>" in svg
