"""Nested mapping: an expand inside a mapped task group, over a value that depends on the group's
own item, and a mapped task group inside a mapped task group (Airflow refuses both).

``crawl`` is mapped over three sites. Inside it, ``list_pages`` runs once per site and returns
that site's pages (2, 3 and 1 of them), and ``fetch`` expands over that list: six ``fetch``
instances in all, each known by its path of indexes, ``fetch [1][2]`` being page 2 of site 1.
Each site's ``fetch`` instances start as soon as that site's list is there, without waiting for
the other sites; ``site_total`` of a site receives the results of that site's pages only, and
``grand_total`` the three site totals.

``audit`` is mapped over two regions, and inside it the mapped group ``zone`` over the region's
own list of zones (a group argument mapped over again): ``check`` runs once per (region, zone),
``check [0][1]`` being the second zone of the first region.
"""
from __future__ import annotations

from datetime import datetime

from dagsapp.sdk import dag, task, task_group

PAGES = {"alpha": 2, "beta": 3, "gamma": 1}
REGIONS = [{"region": "north", "zones": ["n1", "n2", "n3"]}, {"region": "south", "zones": ["s1", "s2"]}]


@dag(dag_id="example_nested_mapping", start_date=datetime(2024, 1, 1), schedule=None, tags=["example"])
def example_nested_mapping() -> None:
    @task
    def list_sites() -> list[str]:
        return list(PAGES)

    @task_group
    def crawl(site: str) -> object:
        @task
        def list_pages(site: str) -> list[str]:
            return [f"{site}/page-{n}" for n in range(PAGES[site])]

        @task(map_index_template="{{ task.op_kwargs['page'] }}")
        def fetch(page: str) -> int:
            return len(page)

        @task
        def site_total(sizes: list[int]) -> int:
            return sum(sizes)

        return site_total(fetch.expand(page=list_pages(site)))

    @task
    def grand_total(totals: list[int]) -> int:
        return sum(totals)

    grand_total(crawl.expand(site=list_sites()))

    @task_group
    def audit(region: str, zones: list[str]) -> None:
        @task_group
        def zone(z: str) -> None:
            @task
            def check(z: str, region: str) -> str:
                return f"{region}:{z} ok"

            check(z, region)

        zone.expand(z=zones)

    audit.expand_kwargs(REGIONS)


example_nested_mapping()
