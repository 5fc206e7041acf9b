"""Mapped instances at scale: a picker by typing, a numbered pager with a jump, names for every row (issue 12, point 10)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any

from django.test import Client

from runs.models import DagRun, TaskInstance, TaskMap
from runs.web.queries import InstancePage

SUGGEST = "/dags/view_add/runs/{run_id}/tasks/add/suggestions/"
PANEL = "/dags/view_add/runs/{run_id}/tasks/add/"


def _big(make_run: Callable[..., DagRun], expand_task: Callable[..., None], n: int) -> DagRun:
    run = make_run()
    expand_task(run, "add", n, state="success", names=lambda i: f"item-{i}")
    return run


class PickerTests:
    def test_it_suggests_indexes_starting_with_the_digits_typed_exact_first(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _big(make_run, expand_task, 2000)
        body = operator_client.get(SUGGEST.format(run_id=run.run_id), {"pick": "15"}, HTTP_HX_REQUEST="true").content.decode()
        values = [int(v) for v in re.findall(r'<option value="(\d+)">', body)]
        assert values == [15, 150, 151, 152, 153, 154, 155, 156, 157, 158]
        assert "15: item-15" in body

    def test_it_suggests_by_name_and_answers_json_without_htmx(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _big(make_run, expand_task, 300)
        data = json.loads(operator_client.get(SUGGEST.format(run_id=run.run_id), {"pick": "item-29"}).content)
        assert [s["map_index"] for s in data["suggestions"]] == [29, 290, 291, 292, 293, 294, 295, 296, 297, 298]

    def test_it_opens_the_instance_typed_by_index_or_by_name(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _big(make_run, expand_task, 300)
        body = operator_client.get(PANEL.format(run_id=run.run_id), {"pick": "273"}, HTTP_HX_REQUEST="true").content.decode()
        assert body.lstrip().startswith('<div id="instance-panel"') and "[273]" in body
        body = operator_client.get(PANEL.format(run_id=run.run_id), {"pick": "item-42"}, HTTP_HX_REQUEST="true").content.decode()
        assert "[42]" in body.split("</h2>")[0]
        # Nothing by that name: the table, searched for it.
        body = operator_client.get(PANEL.format(run_id=run.run_id), {"pick": "nope<b>"}, HTTP_HX_REQUEST="true").content.decode()
        assert body.lstrip().startswith('<div id="task-panel"') and "No instances match" in body and "<b>" not in body

    def test_its_suggestions_take_one_query_whatever_the_number_of_instances(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None], django_assert_max_num_queries: Any,
    ) -> None:
        run = _big(make_run, expand_task, 3000)
        # Session, user, run, then one for the suggestions.
        with django_assert_max_num_queries(4):
            operator_client.get(SUGGEST.format(run_id=run.run_id), {"pick": "2"}, HTTP_HX_REQUEST="true")


class PagerTests:
    def test_it_numbers_the_pages_around_this_one_with_the_first_and_last(self) -> None:
        def numbers(page: int, pages: int) -> list[int | None]:
            return InstancePage(total=pages * 50, page=page, pages=pages, instances=[], order_by="map_index", state=None, q="").page_numbers()
        assert numbers(1, 1) == [1]
        assert numbers(1, 2000) == [1, 2, 3, None, 2000]
        assert numbers(1000, 2000) == [1, None, 998, 999, 1000, 1001, 1002, None, 2000]
        assert numbers(4, 9) == [1, 2, 3, 4, 5, 6, None, 9]

    def test_it_offers_numbered_pages_and_a_jump(
        self, operator_client: Client, make_run: Callable[..., DagRun], expand_task: Callable[..., None],
    ) -> None:
        run = _big(make_run, expand_task, 600)
        body = operator_client.get(PANEL.format(run_id=run.run_id), {"page": "6", "state": "success"}, HTTP_HX_REQUEST="true").content.decode()
        pager = html.unescape(body.split('id="pager"')[1].split("</nav>")[0])
        assert '<span class="current" aria-current="page">6</span>' in pager
        assert 'page=12"' in pager and ">12</a>" in pager and 'page=4"' in pager
        jump = body.split('<form id="page-jump"')[1].split("</form>")[0]
        assert '<input type="hidden" name="state" value="success">' in jump and 'name="page"' not in jump
        assert 'form="page-jump"' in pager


class NameColumnTests:
    def test_it_falls_back_to_the_dict_key_of_a_dict_mapped_task(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add").update(rendered_map_index=None)
        for i, key in enumerate(["orders", "customers", "items"]):
            TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=i).update(item_identity=key)
        data = run.serialized_dag.data
        data["tasks"]["add"]["mapping"]["input"] = {"type": "dict_of_lists", "args": {"x": {"t": "xcom", "task_id": "make", "key": "return_value", "mapped": False}}}
        run.serialized_dag.save()
        TaskMap.objects.create(dag_run=run, task_id="make", length=3, keys=["orders", "customers", "items"])
        body = operator_client.get(PANEL.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        assert '<td class="name name-key">' in body and ">orders</a>" in body and ">items</a>" in body

    def test_it_falls_back_to_a_short_repr_of_the_items_arguments(self, operator_client: Client, run: DagRun) -> None:
        TaskInstance.objects.filter(dag_run=run, task_id="add").update(rendered_map_index=None)
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=0).update(rendered_fields={"mapped_kwargs": {"x": 1}})
        TaskInstance.objects.filter(dag_run=run, task_id="add", map_index=1).update(rendered_fields={"mapped_kwargs": {"x": "<b>" * 200}})
        body = operator_client.get(PANEL.format(run_id=run.run_id), HTTP_HX_REQUEST="true").content.decode()
        row0 = body.split('id="ti-add-0"')[1].split("</tr>")[0]
        assert '<td class="name name-item">' in row0 and ">x=1</a>" in row0
        row1 = body.split('id="ti-add-1"')[1].split("</tr>")[0]
        assert "&lt;b&gt;" in row1 and "<b>" not in row1 and "…" in row1
        row2 = body.split('id="ti-add-2"')[1].split("</tr>")[0]
        assert '<td class="name name-none"></td>' in row2  # not run yet, no name
