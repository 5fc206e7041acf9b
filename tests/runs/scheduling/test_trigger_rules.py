"""Trigger rules against Airflow's semantics, one upstream state mix at a time."""

from __future__ import annotations

import pytest

from dagsapp.trigger_rule import TriggerRule
from runs.scheduling.trigger_rules import UpstreamCounts, evaluate

TR = TriggerRule


def counts(*, success: int = 0, skipped: int = 0, failed: int = 0, upstream_failed: int = 0, running: int = 0) -> UpstreamCounts:
    """Counts as the scheduler builds them: `running` stands for any unfinished upstream."""
    done = success + skipped + failed + upstream_failed
    return UpstreamCounts(total=done + running, success=success, skipped=skipped, failed=failed,
                          upstream_failed=upstream_failed, done=done)


ALL_OK = counts(success=3)
ONE_RUNNING = counts(success=2, running=1)
ONE_FAILED_OTHERS_RUNNING = counts(failed=1, running=2)
ONE_FAILED_DONE = counts(success=2, failed=1)
ONE_UPSTREAM_FAILED_DONE = counts(success=2, upstream_failed=1)
ONE_SKIPPED_DONE = counts(success=2, skipped=1)
ONE_SKIPPED_OTHERS_RUNNING = counts(skipped=1, running=2)
ONE_SUCCESS_OTHERS_RUNNING = counts(success=1, running=2)
ALL_SKIPPED = counts(skipped=3)
ALL_FAILED = counts(failed=2, upstream_failed=1)
NOTHING_DONE = counts(running=3)

CASES = [
    # all_success: fails fast on a failure, skips on a skip, otherwise waits for every success.
    (TR.ALL_SUCCESS, ALL_OK, "run"),
    (TR.ALL_SUCCESS, ONE_RUNNING, "wait"),
    (TR.ALL_SUCCESS, ONE_FAILED_OTHERS_RUNNING, "upstream_failed"),
    (TR.ALL_SUCCESS, ONE_UPSTREAM_FAILED_DONE, "upstream_failed"),
    (TR.ALL_SUCCESS, ONE_SKIPPED_OTHERS_RUNNING, "skipped"),
    (TR.ALL_SUCCESS, ALL_SKIPPED, "skipped"),
    # all_failed: skipped as soon as one upstream succeeded or skipped.
    (TR.ALL_FAILED, ALL_FAILED, "run"),
    (TR.ALL_FAILED, ONE_FAILED_OTHERS_RUNNING, "wait"),
    (TR.ALL_FAILED, ONE_SUCCESS_OTHERS_RUNNING, "skipped"),
    (TR.ALL_FAILED, ONE_SKIPPED_OTHERS_RUNNING, "skipped"),
    # all_done: whatever the outcome, once every upstream finished.
    (TR.ALL_DONE, ONE_FAILED_DONE, "run"),
    (TR.ALL_DONE, ALL_SKIPPED, "run"),
    (TR.ALL_DONE, ALL_FAILED, "run"),
    (TR.ALL_DONE, ONE_RUNNING, "wait"),
    # one_success: runs on the first success without waiting for the rest.
    (TR.ONE_SUCCESS, ONE_SUCCESS_OTHERS_RUNNING, "run"),
    (TR.ONE_SUCCESS, NOTHING_DONE, "wait"),
    (TR.ONE_SUCCESS, ONE_FAILED_OTHERS_RUNNING, "wait"),
    (TR.ONE_SUCCESS, ALL_SKIPPED, "skipped"),
    (TR.ONE_SUCCESS, ALL_FAILED, "upstream_failed"),
    # one_failed: runs on the first failure; skipped when all finished without one.
    (TR.ONE_FAILED, ONE_FAILED_OTHERS_RUNNING, "run"),
    (TR.ONE_FAILED, ONE_UPSTREAM_FAILED_DONE, "run"),
    (TR.ONE_FAILED, ONE_RUNNING, "wait"),
    (TR.ONE_FAILED, ALL_OK, "skipped"),
    (TR.ONE_FAILED, ONE_SKIPPED_DONE, "skipped"),
    # none_failed: success or skipped upstreams are fine; waits for all of them.
    (TR.NONE_FAILED, ALL_OK, "run"),
    (TR.NONE_FAILED, ONE_SKIPPED_DONE, "run"),
    (TR.NONE_FAILED, ALL_SKIPPED, "run"),
    (TR.NONE_FAILED, ONE_RUNNING, "wait"),
    (TR.NONE_FAILED, ONE_FAILED_OTHERS_RUNNING, "upstream_failed"),
    (TR.NONE_FAILED, ONE_UPSTREAM_FAILED_DONE, "upstream_failed"),
    # none_failed_min_one_success: like none_failed, but all skipped means skipped.
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, ONE_SKIPPED_DONE, "run"),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, ALL_SKIPPED, "skipped"),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, ONE_RUNNING, "wait"),
    (TR.NONE_FAILED_MIN_ONE_SUCCESS, ONE_FAILED_DONE, "upstream_failed"),
    # none_skipped: any skip skips it at once; failures are fine.
    (TR.NONE_SKIPPED, ONE_FAILED_DONE, "run"),
    (TR.NONE_SKIPPED, ALL_OK, "run"),
    (TR.NONE_SKIPPED, ONE_SKIPPED_OTHERS_RUNNING, "skipped"),
    (TR.NONE_SKIPPED, ONE_RUNNING, "wait"),
    # always: never waits.
    (TR.ALWAYS, NOTHING_DONE, "run"),
    (TR.ALWAYS, ALL_FAILED, "run"),
]


class EvaluateTests:
    @pytest.mark.parametrize(("rule", "upstream", "outcome"), CASES, ids=[f"{r}-{i}" for i, (r, _, _) in enumerate(CASES)])
    def test_it_follows_airflow_semantics(self, rule: TriggerRule, upstream: UpstreamCounts, outcome: str) -> None:
        assert evaluate(rule, upstream) == outcome

    def test_it_covers_every_rule(self) -> None:
        assert {rule for rule, _, _ in CASES} == set(TriggerRule)

    @pytest.mark.parametrize("rule", list(TriggerRule))
    def test_it_runs_a_task_without_upstream(self, rule: TriggerRule) -> None:
        assert evaluate(rule, UpstreamCounts()) == "run"

    def test_it_accepts_the_rule_as_its_serialized_string(self) -> None:
        assert evaluate("none_failed", ONE_SKIPPED_DONE) == "run"

    def test_it_rejects_an_unknown_rule(self) -> None:
        with pytest.raises(ValueError, match="one_done"):
            evaluate("one_done", ALL_OK)

    def test_it_adds_counts_field_by_field(self) -> None:
        assert counts(success=1, running=1) + counts(failed=2) == UpstreamCounts(total=4, success=1, failed=2, done=3)
