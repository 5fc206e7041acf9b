"""Trigger rules as one pure function over upstream state counts, so every rule is testable alone."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dagsapp.trigger_rule import TriggerRule

Outcome = Literal["wait", "run", "skipped", "upstream_failed"]


@dataclass(frozen=True)
class UpstreamCounts:
    total: int = 0
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    done: int = 0

    def __add__(self, other: UpstreamCounts) -> UpstreamCounts:
        return UpstreamCounts(*(a + b for a, b in zip(self._t(), other._t(), strict=True)))

    def _t(self) -> tuple[int, ...]:
        return (self.total, self.success, self.skipped, self.failed, self.upstream_failed, self.done)


def evaluate(rule: TriggerRule | str, c: UpstreamCounts) -> Outcome:
    rule = TriggerRule(rule)
    if c.total == 0 or rule is TriggerRule.ALWAYS:
        return "run"
    failed = c.failed + c.upstream_failed
    all_done = c.done >= c.total
    if rule is TriggerRule.ALL_SUCCESS:
        if failed:
            return "upstream_failed"
        if c.skipped:
            return "skipped"
        return "run" if c.success >= c.total else "wait"
    if rule is TriggerRule.ALL_FAILED:
        if c.success or c.skipped:
            return "skipped"
        return "run" if failed >= c.total else "wait"
    if rule is TriggerRule.ALL_DONE:
        return "run" if all_done else "wait"
    if rule is TriggerRule.ONE_SUCCESS:
        if c.success:
            return "run"
        if all_done:
            return "upstream_failed" if failed else "skipped"
        return "wait"
    if rule is TriggerRule.ONE_FAILED:
        if failed:
            return "run"
        return "skipped" if all_done else "wait"
    if rule is TriggerRule.NONE_FAILED:
        if failed:
            return "upstream_failed"
        return "run" if all_done else "wait"
    if rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS:
        if failed:
            return "upstream_failed"
        if all_done:
            return "run" if c.success else "skipped"
        return "wait"
    if rule is TriggerRule.NONE_SKIPPED:
        if c.skipped:
            return "skipped"
        return "run" if all_done else "wait"
    raise ValueError(f"unknown trigger rule {rule!r}")
