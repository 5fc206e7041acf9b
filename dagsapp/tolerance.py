"""Tolerated failures of a mapped task or mapped task group: ``partial(max_failed_ratio=...,
max_failed_count=...)`` (Flyte's min_success_ratio, Step Functions' ToleratedFailurePercentage).

Pure rules, shared by parsing (validation), the scheduler (what a downstream sees) and the
dashboard (what a cell shows): one answer each, so the three never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

# Options of partial() only: an unmapped task has nothing to tolerate.
TOLERANCE_PARAMS = ("max_failed_ratio", "max_failed_count")

Verdict = Literal["none", "pending", "tolerated", "exceeded"]


@dataclass(frozen=True)
class Tolerance:
    max_failed_ratio: float | None = None
    max_failed_count: int | None = None

    def allows(self, *, failed: int, total: int) -> bool:
        """Both bounds hold (a bound not given always holds). ``failed / total`` and the ratio are
        compared as floats, not ``failed <= ratio * total``: 0.29 * 100 is 28.999999999999996."""
        if self.max_failed_count is not None and failed > self.max_failed_count:
            return False
        return self.max_failed_ratio is None or not failed or failed / total <= self.max_failed_ratio

    def verdict(self, *, total: int, failed: int, unfinished: int, expanded: bool) -> Verdict:
        """What the downstream sees of ``failed`` failures among ``total`` (non-removed) indexes.

        ``none``: nothing failed, or the task never expanded (a failed -1 placeholder is not an
        index, so there is nothing to tolerate); ``pending``: failures, but indexes still to
        finish, so the downstream waits instead of failing early; then ``tolerated`` or ``exceeded``.
        """
        if not failed or not expanded:
            return "none"
        if unfinished:
            return "pending"
        return "tolerated" if self.allows(failed=failed, total=total) else "exceeded"

    def describe(self) -> str:
        bounds = []
        if self.max_failed_count is not None:
            bounds.append(f"max_failed_count={self.max_failed_count}")
        if self.max_failed_ratio is not None:
            bounds.append(f"max_failed_ratio={self.max_failed_ratio:g}")
        return ", ".join(bounds)


def pop_tolerance(call: str, kwargs: dict[str, Any]) -> Tolerance | None:
    """Take max_failed_ratio / max_failed_count out of a partial()'s keywords, checked; None when
    neither was given. ``call`` names the user's call: ``add.partial()``."""
    ratio = kwargs.pop("max_failed_ratio", None)
    count = kwargs.pop("max_failed_count", None)
    if ratio is not None and (isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1):
        raise ValueError(f"{call} got max_failed_ratio={ratio!r}; expected a number from 0 to 1")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise ValueError(f"{call} got max_failed_count={count!r}; expected a whole number of 0 or more")
    if ratio is None and count is None:
        return None
    return Tolerance(max_failed_ratio=float(ratio) if ratio is not None else None, max_failed_count=count)


def reject_tolerance(call: str, given: Any, *, partial: str) -> None:
    """The options on an unmapped task (``@task(...)``, an operator's constructor): a clear error."""
    for name in TOLERANCE_PARAMS:
        if name in given:
            raise TypeError(f"{call} got {name}, which only a mapped task or mapped task group takes: give it to {partial}")
