"""The Graph view: layout drawn once per DAG version, states and counts per run, no dot -> a plain message."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from runs.models import DagRun, TaskInstance
from runs.scheduling.dag_processing import process_dags_folder
from runs.scheduling.steps import expand_mapped_task
from runs.services import create_dag_run
from runs.web import graph_svg
from runs.web.queries import Cell
from tests.runs.factories import data, make_run, set_state, write_dag

pytestmark = pytest.mark.django_db

DAG_SOURCE = """
@dag(dag_id="graph_dag", start_date=datetime(2024, 1, 1), schedule=None)
def graph_dag():
    @task
    def add(x, y):
        return x + y

    @task
    def total(values):
        return sum(values)

    @task_group
    def tidy():
        @task
        def report():
            return "ok"

        report()

    total(add.partial(y=10).expand(x=[1, 2, 3])) >> tidy()

graph_dag()
"""


@pytest.fixture(autouse=True)
def graph_cache(settings: Any, tmp_path: Path) -> Path:
    # Each test draws into its own cache, so "dot ran once" is about this test only.
    settings.VAR_DIR = tmp_path / "var"
    return tmp_path / "var" / "graph_cache"


@pytest.fixture
def run(tmp_path: Path) -> DagRun:
    folder = tmp_path / "dags"
    folder.mkdir()
    return make_run(folder, DAG_SOURCE, dag_id="graph_dag")


@pytest.fixture
def viewer(client: Client, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("viewer", password="pw")
    user.groups.add(Group.objects.get_or_create(name="Viewer")[0])
    client.force_login(user)
    return client


def expand(run: DagRun) -> None:
    assert expand_mapped_task(dag_run=run, data=data(run), task_id="add") == 3


def graph_url(run: DagRun | None = None, **params: str) -> str:
    url = reverse("runs:graph", args=["graph_dag"])
    query = {"run_id": run.run_id, **params} if run is not None else params
    return url + ("?" + urlencode(query) if query else "")


def node_class(html: str, task_id: str) -> str:
    match = re.search(rf'<g id="node-{re.escape(task_id)}" class="([^"]*)"', html)
    assert match, f"no node for {task_id}"
    return match[1]


class GraphViewTests:
    def test_it_requires_login(self, client: Client, run: DagRun) -> None:
        response = client.get(graph_url(run))
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")

    def test_it_draws_tasks_groups_and_edges(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        html = viewer.get(graph_url(run)).content.decode()
        assert "<svg" in html and 'class="cluster group"' in html
        assert '<g id="group-tidy"' in html
        assert '<g id="node-tidy.report"' in html and ">report</text>" in html
        assert ">add [3]</text>" in html
        assert "<title>add → total</title>" in html
        # Linked back to the Grid, and a DAG is never imported by the web process (no dags/ module).
        assert reverse("runs:grid", args=["graph_dag"]) in html

    def test_it_labels_a_mapped_task_before_expansion(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run)).content.decode()
        assert ">add [ ]</text>" in html

    def test_it_counts_instances_without_removed_ones(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        set_state(run, "add", "removed", map_index=2)
        html = viewer.get(graph_url(run)).content.decode()
        assert ">add [2]</text>" in html

    def test_it_colours_nodes_with_the_task_group_rule(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        set_state(run, "add", "success")
        set_state(run, "add", "failed", map_index=1)
        set_state(run, "total", "running")
        html = viewer.get(graph_url(run)).content.decode()
        assert node_class(html, "add") == "node task state-failed"
        assert node_class(html, "total") == "node task state-running"
        assert node_class(html, "tidy.report") == "node task state-none"
        assert re.search(r"<title>add: (2 success, 1 failed|1 failed, 2 success)</title>", html, re.I)

    def test_it_shows_the_latest_run_by_default(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        set_state(run, "total", "success")
        later = create_dag_run(dag_id="graph_dag", logical_date=timezone.now())
        html = viewer.get(graph_url()).content.decode()
        assert node_class(html, "total") == "node task state-none"
        assert f'value="{later.run_id}" selected' in html
        html = viewer.get(graph_url(run)).content.decode()
        assert node_class(html, "total") == "node task state-success"

    def test_it_links_nodes_to_the_details_panel(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run)).content.decode()
        # The panel's address names the Graph, so opened in a new tab or reloaded it stays on the Graph.
        panel = reverse("runs:task_panel", args=["graph_dag", run.run_id, "add"]) + "?view=graph"
        assert f'href="{panel}"' in html
        assert f'hx-get="{panel}" hx-target="#details"' in html

    def test_it_opens_the_panel_named_in_the_url(self, viewer: Client, run: DagRun) -> None:
        panel = reverse("runs:task_panel", args=["graph_dag", run.run_id, "total"])
        html = viewer.get(graph_url(run, task_id="total")).content.decode()
        assert f"""<aside id="details" class="details" hx-vals='{{"view": "graph"}}' hx-get="{panel}?view=graph" hx-trigger="load">""" in html
        html = viewer.get(graph_url(run, task_id="nope")).content.decode()
        assert """<aside id="details" class="details" hx-vals='{"view": "graph"}'>""" in html

    def test_it_draws_a_dag_without_runs(self, viewer: Client, run: DagRun) -> None:
        DagRun.objects.all().delete()
        html = viewer.get(graph_url()).content.decode()
        assert ">add [ ]</text>" in html
        assert "No runs yet" in html

    def test_it_404s_on_an_unknown_run_or_dag(self, viewer: Client, run: DagRun) -> None:
        assert viewer.get(reverse("runs:graph", args=["graph_dag"]) + "?run_id=nope").status_code == 404
        assert viewer.get(reverse("runs:graph", args=["nope"])).status_code == 404

    def test_it_polls_only_the_graph_while_the_run_is_active(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "graph-body"}
        response = viewer.get(graph_url(run), **headers)
        html = response.content.decode()
        assert response.status_code == 200
        assert html.lstrip().startswith('<div id="graph-body"') and "<html" not in html
        assert 'hx-trigger="every 2s"' in html
        DagRun.objects.filter(pk=run.pk).update(state="success")
        response = viewer.get(graph_url(run), **headers)
        assert response.status_code == 286  # htmx stops polling
        assert 'hx-trigger="every' not in response.content.decode()

    def test_it_renders_the_whole_page_for_other_htmx_requests(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run), HTTP_HX_REQUEST="true").content.decode()
        assert 'id="graph-run-form"' in html

    def test_its_query_count_does_not_grow_with_the_instances(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        viewer.get(graph_url(run))  # draws and caches the layout
        with CaptureQueriesContext(connection) as few:
            assert viewer.get(graph_url(run)).status_code == 200
        TaskInstance.objects.bulk_create(
            TaskInstance(dag_run=run, task_id="add", map_index=i, state="success") for i in range(3, 500))
        with CaptureQueriesContext(connection) as many:
            html = viewer.get(graph_url(run)).content.decode()
        assert ">add [500]</text>" in html
        assert len(many.captured_queries) == len(few.captured_queries)
        # A live run's states come from its live counts (runs.summaries.live), not from its instances.
        assert not [q["sql"] for q in many.captured_queries if "runs_taskinstance" in q["sql"]]
        counted = [q["sql"] for q in many.captured_queries if "runs_taskcount" in q["sql"]]
        assert len(counted) == 1 and "GROUP BY" in counted[0]


class GraphLayoutCacheTests:
    def test_it_runs_dot_once_per_dag_version(self, viewer: Client, run: DagRun, graph_cache: Path, tmp_path: Path) -> None:
        with mock.patch.object(graph_svg, "_run_dot", wraps=graph_svg._run_dot) as run_dot:
            viewer.get(graph_url(run))
            expand(run)
            set_state(run, "add", "success")
            html = viewer.get(graph_url(run)).content.decode()
            assert run_dot.call_count == 1
            assert ">add [3]</text>" in html
            assert [p.name for p in graph_cache.iterdir()] == [f"{run.serialized_dag.dag_hash}-v{graph_svg.LAYOUT_VERSION}.svg"]

            # A new version of the DAG is drawn once more; the old run keeps its own layout.
            write_dag(tmp_path / "dags", DAG_SOURCE.replace("x=[1, 2, 3]", "x=[1, 2, 3, 4]"))
            process_dags_folder(tmp_path / "dags")
            new = create_dag_run(dag_id="graph_dag", logical_date=timezone.now())
            assert new.serialized_dag_id != run.serialized_dag_id
            viewer.get(graph_url(new))
            viewer.get(graph_url(new))
            viewer.get(graph_url(run))
            assert run_dot.call_count == 2
        assert len(list(graph_cache.iterdir())) == 2

    def test_it_reads_the_layout_another_process_cached(self, viewer: Client, run: DagRun, graph_cache: Path) -> None:
        viewer.get(graph_url(run))
        (path,) = graph_cache.iterdir()
        path.write_text(path.read_text().replace('role="group"', 'role="group" data-from-cache="yes"'))
        with mock.patch.object(graph_svg, "_run_dot") as run_dot:
            html = viewer.get(graph_url(run)).content.decode()
        run_dot.assert_not_called()
        assert 'data-from-cache="yes"' in html

    def test_it_says_plainly_when_dot_is_missing(self, viewer: Client, run: DagRun) -> None:
        # Outside the project: pretend Graphviz is not installed.
        with mock.patch("runs.web.graph_svg.shutil.which", return_value=None):
            response = viewer.get(graph_url(run))
        html = response.content.decode()
        assert response.status_code == 200
        assert "Graphviz 'dot' is not installed: the graph cannot be drawn; the Grid view still works." in html
        assert f'href="{reverse("runs:grid", args=["graph_dag"])}"' in html
        assert "<svg" not in html

    def test_it_says_so_when_the_dot_executable_fails_to_start(self, viewer: Client, run: DagRun) -> None:
        import graphviz

        with mock.patch.object(graphviz.Digraph, "pipe", side_effect=graphviz.ExecutableNotFound(["dot"])):
            response = viewer.get(graph_url(run))
        assert response.status_code == 200
        assert "the graph cannot be drawn" in response.content.decode()


class RenderGraphTests:
    def test_it_escapes_every_substituted_value(self) -> None:
        out = graph_svg.render_graph(
            '<a href="@@U0@@" hx-push-url="@@P0@@"><title>@@T0@@</title>x [@@N0@@] @@S0@@</a>',
            order=["t<&>"], cells={"t<&>": Cell(counts={"success": 2})},
            panel_urls={"t<&>": '/p?a=1&b="2"'}, push_urls={"t<&>": "/g?x=<y>"},
        )
        assert out == ('<a href="/p?a=1&amp;b=&quot;2&quot;" hx-push-url="/g?x=&lt;y&gt;">'
                       "<title>t&lt;&amp;&gt;: 2 success</title>x [2] success</a>")

    def test_it_shows_no_count_and_no_state_without_a_run(self) -> None:
        out = graph_svg.render_graph("x [@@N0@@] @@S0@@", order=["x"], cells=None, panel_urls={}, push_urls={})
        assert out == "x [ ] none"

    def test_it_escapes_labels_in_the_drawing(self) -> None:
        source = graph_svg.dot_source({
            "dag_id": "d", "task_order": ["a"], "task_groups": {}, "root_children": [{"type": "task", "id": "a"}],
            "tasks": {"a": {"label": "a<b>&", "mapping": None, "downstream": []}},
        })
        svg = graph_svg._templatize(graph_svg._run_dot(source), {"task_order": ["a"]})
        assert ">a&lt;b&gt;&amp;</text>" in svg


class GraphKeepsItsUrlTests:
    """Issue 12, point 8: an instance opened from the Graph keeps a Graph URL; the header is the Grid's."""

    def test_it_opens_an_instance_named_in_a_graph_url(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run, task_id="add", map_index="1")).content.decode()
        panel = reverse("runs:task_panel", args=["graph_dag", run.run_id, "add"])
        assert f'hx-get="{panel}?map_index=1&amp;view=graph"' in html

    def test_a_panel_opened_from_the_graph_pushes_graph_urls(self, viewer: Client, run: DagRun) -> None:
        expand(run)
        panel = reverse("runs:task_panel", args=["graph_dag", run.run_id, "add"])
        body = viewer.get(panel, {"view": "graph"}, HTTP_HX_REQUEST="true").content.decode()
        # The rows name their Graph URL; the sorts and pages push their own request, which carries view=graph.
        rows = [u for u in re.findall(r'hx-push-url="([^"]+)"', body.split('id="mapped-instances"')[1]) if u != "true"]
        assert len(rows) == 3 and all(u.startswith("/dags/graph_dag/graph/?") for u in rows)
        # Reloaded, the panel's own address is the Graph with the panel open.
        page = viewer.get(panel, {"view": "graph", "map_index": "1"}).content.decode()
        assert "graph-page" in page and "map_index=1&amp;view=graph" in page

    def test_its_header_is_the_grids_and_switching_runs_keeps_the_task(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run, task_id="add")).content.decode()
        header = html.split('id="dag-header"')[1].split('class="graph-toolbar"')[0]
        assert "schedule" in header and 'id="graph-link"' in header and 'aria-current="page"' in header
        form = html.split('id="graph-run-form"')[1].split("</form>")[0]
        assert '<input type="hidden" name="task_id" value="add">' in form


class CollapsedGroupsTests:
    """Task groups collapse into one node and expand again (issue 12, point 8)."""

    def test_it_draws_a_collapsed_group_as_one_node_coloured_by_its_tasks(self, viewer: Client, run: DagRun) -> None:
        set_state(run, "tidy.report", "failed")
        html = viewer.get(graph_url(run, collapsed="tidy")).content.decode()
        assert '<g id="node-tidy.report"' not in html and '<g id="group-tidy"' not in html
        assert re.search(r'<g id="group-node-tidy" class="node task group-node state-failed"', html)
        assert "▸ tidy" in html
        # Its tasks' edges now end at the group's node.
        assert "<title>total → tidy</title>" in html
        # The group's node expands it (a link to the Graph without it collapsed); the run picker keeps it collapsed.
        node = html.split('<g id="group-node-tidy"', 1)[1].split("</g>", 1)[0]
        assert f'xlink:href="{escape(graph_url(run))}"' in node
        assert 'name="collapsed" value="tidy"' in html

    def test_it_links_an_expanded_groups_label_to_collapse_it_and_offers_collapse_all(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run)).content.decode()
        assert '<g id="node-tidy.report"' in html
        assert "▾ tidy" in html
        assert escape(graph_url(run, collapsed="tidy")) in html  # the cluster's label link
        assert 'id="collapse-all"' in html and 'id="expand-all"' in html

    def test_it_keeps_the_collapsed_groups_when_a_task_is_opened_or_the_graph_polls(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run, collapsed="tidy")).content.decode()
        push = escape(reverse("runs:graph", args=["graph_dag"]) + "?" + urlencode({"run_id": run.run_id, "task_id": "add",
                                                                                    "collapsed": "tidy"}))
        assert push in html
        assert escape(graph_url(run, collapsed="tidy")) in html  # the poll of an active run

    def test_it_ignores_unknown_group_ids(self, viewer: Client, run: DagRun) -> None:
        html = viewer.get(graph_url(run, collapsed="nope,<script>")).content.decode()
        assert '<g id="node-tidy.report"' in html and "<script>" not in html.split("<svg", 1)[1].split("</svg>", 1)[0]
