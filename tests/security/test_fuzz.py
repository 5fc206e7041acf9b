"""Property-based fuzzing of every URL's query parameters and form fields (issue 10).

Every URL pattern is reversed with the real ids of a finished run with a mapped task, then
Hypothesis sends it the parameters its view reads (and made-up ones) with hostile values:
unicode digits, NUL, huge and negative numbers, JSON fragments, very long strings. As an
Operator and as a Viewer, by GET and by POST. Never a 500; a Viewer's POST is refused and
changes nothing; the JSON API answers JSON even when it refuses.

Reproducible (derandomize) and small (MAX_EXAMPLES per URL, role and method), to stay quick in CI.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runs.models import DagRun, TaskInstance, XCom
from tests.security.test_requests import ids_for
from tests.url_routes import is_api, site_routes

# 25 in CI; FUZZ_MAX_EXAMPLES=500 for a deeper run by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))

# The names each view reads from request.GET / request.POST (grep them in runs/web/views/ and
# Django's LoginView). A URL missing here fails test_it_knows_every_url: a new view gets fuzzed too.
PARAMS: dict[str, tuple[str, ...]] = {
    "runs:login": ("next", "username", "password"),
    "runs:logout": ("next",),
    "runs:health": (),
    "runs:set_time_zone": ("mode", "zone", "browser_zone", "next"),
    "runs:time_zone_names": (),
    "runs:dag_list": ("page", "q", "tag", "state"),
    "runs:dag_code": ("run_id", "version"),
    "runs:run_list": ("state", "dag_id", "from", "to", "page"),
    "runs:task_instance_list": ("state", "dag_id", "from", "to", "page"),
    "runs:grid": ("run_id", "task_id", "map_index", "num_runs", "state", "order_by", "page", "q", "tab", "try", "run_state", "run_type",
                  "pick", "view"),
    "runs:graph": ("run_id", "task_id", "map_index", "collapsed"),
    "runs:watch": ("token",),
    "runs:dag_watch": ("token",),
    "runs:run_panel": ("num_runs", "run_state", "run_type"),
    "runs:run_conf": (),
    "runs:run_gantt": ("expand", "page"),
    "runs:run_action_dialog": ("action", "only_failed"),
    "runs:run_clear": ("only_failed",),
    "runs:run_mark": ("state",),
    "runs:task_instance_suggestions": ("pick",),
    "runs:task_action_dialog": ("action", "map_index", "instance", "downstream", "upstream", "only_failed", "tab", "try"),
    "runs:dag_trigger": ("conf", "run_id", "logical_date", "param.x"),
    "runs:dag_pause": ("is_paused", "next"),
    "runs:dag_audit": ("run_id", "event", "owner", "page"),
    "runs:audit_log": ("run_id", "event", "owner", "page"),
    "runs:variable_list": ("q", "page"),
    "runs:variable_create": ("key", "value", "description"),
    "runs:variable_edit": ("key", "value", "description"),
    "runs:variable_delete": (),
    "runs:task_panel": ("map_index", "state", "order_by", "page", "q", "tab", "try", "outer", "pick", "view"),
    "runs:task_durations": ("num_runs",),
    "runs:task_clear_mapped": ("downstream", "upstream", "only_failed", "state", "order_by", "page", "q"),
    "runs:task_clear_mapped_changed": ("downstream", "state", "order_by", "page", "q"),
    "runs:task_clear_outer": ("outer", "downstream", "state", "order_by", "page", "q"),
    "runs:task_instances_action": ("action", "map_index", "downstream", "upstream", "only_failed", "state", "order_by", "page", "q"),
    "runs:task_instance": ("tab", "try", "start", "q", "match", "shown_log"),
    "runs:task_instance_log": ("try", "start", "q", "match", "from", "download"),
    "runs:task_instance_xcom": ("key",),
    "runs:task_instance_clear": ("downstream", "upstream", "only_failed", "tab", "try"),
    "runs:task_instance_mark": ("state", "tab", "try"),
    "runs:api_mapped_instances": ("state", "order_by", "page", "q", "outer"),
    "runs:api_mapped_instance": (),
    "runs:api_task_instance_log": (),
    # Airflow's REST API v2 (runs/web/api_v2/): the reads that take parameters.
    "api_v2:get_dags": ("limit", "offset", "tags", "tags_match_mode", "dag_id_pattern", "paused", "exclude_stale",
                        "has_import_errors", "order_by"),
    "api_v2:get_dag_runs": ("limit", "offset", "state", "run_type", "run_id_pattern", "logical_date_gte", "start_date_lt",
                            "duration_gte", "order_by"),
    "api_v2:get_task_instances": ("limit", "offset", "task_id", "state", "map_index", "try_number", "duration_gte",
                                  "start_date_gte", "rendered_map_index_pattern", "order_by"),
    "api_v2:get_mapped_task_instances": ("limit", "offset", "state", "map_index", "try_number", "duration_gte", "duration_lt",
                                         "end_date_lte", "rendered_map_index_pattern", "order_by"),
    "api_v2:get_task_instance_tries": ("map_index",),
    "api_v2:get_log": ("map_index", "full_content", "token"),
    "api_v2:get_xcom_entries": ("xcom_key", "map_index", "limit", "offset", "order_by"),
    "api_v2:get_xcom_entry": ("map_index", "deserialize", "stringify"),
    "api_v2:wait_dag_run_until_finished": ("interval", "result"),
    "api_v2:get_variables": ("limit", "offset", "variable_key_pattern", "order_by"),
    "api_v2:get_import_errors": ("limit", "offset", "filename_pattern", "order_by"),
}
# Regression corpus: values that once answered a 500, tried first on every run.
SEEDS: dict[str, list[dict[str, Any]]] = {
    # Django's LoginView raised ValueError ("Redirection loop") for a logged-in user.
    "runs:login": [{"next": "/login/"}],
}
# Reachable by a Viewer's POST without being refused: logging in and out, and choosing one's own
# time zone, change no run.
VIEWER_MAY_POST = {"runs:login", "runs:logout", "runs:health", "runs:set_time_zone"}

# Hostile values by kind; each kind is a branch of the strategy, so every kind is drawn often.
NUMBERS = ["", " ", "0", "-0", "-1", "-2", "1", "+1", " 7 ", "²", "1²", "٣", "１２", "𝟙", "Ⅻ", "0x10", "1e3", "1_000", "--1",
           "1.5", "NaN", "inf", "-inf", str(2**31), str(2**31 - 1), str(2**63), str(2**63 - 1), str(-(2**63) - 1),
           str(10**9), str(10**9 + 1)]
WORDS = ["on", "off", "true", "clear", "success", "failed", "running", "queued", "removed", "skipped", "upstream_failed",
         "map_index", "-map_index", "state", "-state", "start_date", "-end_date", "duration", "try_number",
         "details", "log", "xcom", "rendered", "return_value", "keys", "show"]
INJECTIONS = ["\x00", "a\x00b", "%00", "%", "&", "=", "?", "#", "\\", "'", '"', ";--", "' OR 1=1 --", "<script>alert(1)</script>",
              "{{ 7*7 }}", "${x}", "\u202e", "\ufeff", "\n\r", "\t", "../../etc/passwd"]
NUMERIC = {"page", "num_runs", "map_index", "try", "after", "start", "match", "from", "version", "limit", "offset", "try_number", "interval", "duration_gte",
           "duration_lt"}
LOCATIONS = ["/", "//evil.example", "https://evil.example/", "javascript:alert(1)", "/login/?next=/login/", "/%2e%2e/"]
JSON_FRAGMENTS = ['{"a":', "[1,2", "null", "[]", "{}", '{"__proto__": {}}', "1e999", '"\\u0000"', '{"a": NaN}',
                  "[" * 1000, '{"a": ' * 200 + "1" + "}" * 200, "\ud7ff", '{"conf": {"x": [1, 2, 3]}}']

# Surrogates cannot travel in UTF-8, the only encoding the test client (and a browser) sends.
chars = st.characters(blacklist_categories=("Cs",))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(chars, max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(chars, max_size=5), inner, max_size=3),
    max_leaves=8,
)


def value_strategy(real: list[str]) -> st.SearchStrategy[str]:
    """`real`: the run's ids and the app's own URLs, so that some requests get past the lookups."""
    return st.one_of(
        st.sampled_from(NUMBERS), st.sampled_from(WORDS), st.sampled_from(INJECTIONS), st.sampled_from(LOCATIONS + real),
        st.text(chars, max_size=40),
        st.integers(min_value=-(10**40), max_value=10**40).map(str),
        st.sampled_from(JSON_FRAGMENTS),
        json_values.map(json.dumps),
        # Very long: past Python's 4,300-digit int() limit, past the 250 characters a search keeps.
        st.tuples(st.text(chars, min_size=1, max_size=3), st.integers(min_value=100, max_value=7_000)).map(lambda t: t[0] * t[1]),
        st.integers(min_value=4_290, max_value=4_310).map(lambda n: "9" * n),
    )


def params_strategy(names: tuple[str, ...], real: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Each name the view reads, present or not, once or repeated; plus a few made-up names. Half
    of a known name's values are of the kind it expects (a number, a word, a URL), the hostile half."""
    generic = value_strategy(real)

    def one_or_many(name: str) -> st.SearchStrategy[Any]:
        kind = st.sampled_from(LOCATIONS + real) if name == "next" else (
            st.sampled_from(NUMBERS + real) if name in NUMERIC else st.sampled_from(WORDS + real))
        values = st.one_of(kind, generic)
        return values | st.lists(values, min_size=1, max_size=3)

    named = st.fixed_dictionaries({}, optional={n: one_or_many(n) for n in names})
    made_up = st.dictionaries(st.text(chars, min_size=1, max_size=12), one_or_many(""), max_size=2)
    return st.builds(lambda extra, known: {**extra, **known}, made_up, named)


def _snapshot() -> list[object]:
    return [
        list(DagRun.objects.order_by("pk").values_list("pk", "state", "conf")),
        list(TaskInstance.objects.order_by("pk").values_list("pk", "state", "try_number", "max_tries", "end_date")),
        XCom.objects.count(),
    ]


def _urls(run: DagRun) -> dict[str, str]:
    """Every named URL reversed with the ids of the run's mapped task `show`, instance 0, try 1."""
    kwargs = {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": "show", "map_index": "0", "try_number": "1"}
    urls = {}
    for route in site_routes():
        if route.name in PARAMS:
            urls[route.name] = route.url(ids_for(route, kwargs))
    return urls


def _fuzz(run: DagRun, names: list[str], check: Callable[[str, str, dict[str, Any], bool], None]) -> None:
    """Runs `check(name, url, params, htmx)` on MAX_EXAMPLES drawn parameter sets for each URL."""
    urls = _urls(run)
    real = [run.run_id, run.dag_id, "show", "keys", "0", "1", *urls.values()]
    for name in names:
        _fuzz_one(name, urls[name], real, check)


def _fuzz_one(name: str, url: str, real: list[str], check: Callable[[str, str, dict[str, Any], bool], None]) -> None:
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                     HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(params=params_strategy(PARAMS[name], real), htmx=st.booleans())
    def one(params: dict[str, Any], htmx: bool) -> None:
        check(name, url, params, htmx)

    for seed in SEEDS.get(name, []):
        one = example(params=seed, htmx=False)(one)
    one()


def _request(client: Client, method: str, url: str, params: dict[str, Any], htmx: bool) -> Any:
    headers = {"HTTP_HX_REQUEST": "true"} if htmx else {}
    # The test client re-raises a view's exception, so a 500 fails the test with its traceback.
    return client.get(url, params, **headers) if method == "GET" else client.post(url, params, **headers)


def _assert_answer(name: str, method: str, params: dict[str, Any], response: Any) -> None:
    assert response.status_code < 500, (name, method, params, response.status_code)
    if name.startswith("runs:api_"):
        assert response["Content-Type"] == "application/json", (name, method, params, response.status_code)
        json.loads(response.content)
    if is_api(name):
        assert response["Content-Type"].startswith("application/json"), (name, method, params, response.status_code)
        json.loads(response.content)


class UrlCoverageTests:
    def test_it_knows_every_url(self, db: None) -> None:
        assert {n for n in PARAMS if n.startswith("runs:")} == {r.name for r in site_routes() if r.name.startswith("runs:")}


class FuzzOperatorTests:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_it_never_answers_500_to_an_operator(self, operator_client: Client, hostile_run: DagRun, method: str) -> None:
        def check(name: str, url: str, params: dict[str, Any], htmx: bool) -> None:
            response = _request(operator_client, method, url, params, htmx)
            _assert_answer(name, method, params, response)
            if name == "runs:logout" and method == "POST":
                # Logging out ends the session, not the user: log in again for the next example.
                operator_client.force_login(User.objects.get(username="op"))

        _fuzz(hostile_run, sorted(PARAMS), check)


class FuzzViewerTests:
    @pytest.mark.parametrize("method", ["GET", "POST"])
    def test_it_never_answers_500_nor_changes_anything_for_a_viewer(self, viewer_client: Client, hostile_run: DagRun,
                                                                    method: str) -> None:
        before = _snapshot()

        def check(name: str, url: str, params: dict[str, Any], htmx: bool) -> None:
            response = _request(viewer_client, method, url, params, htmx)
            _assert_answer(name, method, params, response)
            if method == "POST" and name not in VIEWER_MAY_POST:
                # 400: the NUL check runs before any view (config/middleware.py), so before the role check.
                # 422: the REST API reads a POST's JSON body before its role check; nothing changes either way.
                assert response.status_code in (400, 403, 404, 405, 422), (name, params, response.status_code)
            assert _snapshot() == before, (name, method, params)
            if name == "runs:logout" and method == "POST":
                # Logging out ends the session, not the user: log in again for the next example.
                viewer_client.force_login(User.objects.get(username="viewer"))

        _fuzz(hostile_run, sorted(PARAMS), check)
