"""Stragglers relative to the spread of a task's durations and beyond a noticeable time (issue 12, point 10)."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, datetime, timedelta

from runs.web.duration_chart import DurationStats, InstanceTiming, chart_bars, straggler_threshold

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _stats(durations: list[float]) -> DurationStats:
    bars = [InstanceTiming(i, None, "success", 1, T0 + timedelta(seconds=i * 0.01), T0 + timedelta(seconds=i * 0.01 + d), d)
            for i, d in enumerate(durations)]
    median = statistics.median(durations)
    mad = statistics.median(abs(d - median) for d in durations)
    return DurationStats(total=len(durations), not_started=0, median=median, first_start=T0,
                         last_end=max(b.end_date for b in bars if b.end_date), bars=bars, mad=mad)


class StragglerTests:
    def test_it_flags_none_of_a_thousand_quick_instances_with_ordinary_jitter(self) -> None:
        rng = random.Random(12)
        durations = [rng.lognormvariate(-3.9, 0.5) for _ in range(1000)]  # ~20 ms, a long tail to ~150 ms
        bars, _axis = chart_bars(_stats(durations), now=T0)
        assert sum(b.straggler for b in bars) == 0

    def test_it_flags_an_instance_far_beyond_the_spread_of_the_others(self) -> None:
        durations = [5.0 + 0.1 * (i % 7) for i in range(200)] + [30.0]
        bars, _axis = chart_bars(_stats(durations), now=T0)
        assert [b.timing.map_index for b in bars if b.straggler] == [200]

    def test_it_does_not_flag_a_wide_but_ordinary_spread(self) -> None:
        durations = [float(s) for s in range(1, 61)]  # 1 s .. 60 s, evenly spread
        bars, _axis = chart_bars(_stats(durations), now=T0)
        assert sum(b.straggler for b in bars) == 0

    def test_its_threshold_is_the_spread_bound_or_the_absolute_floor_whichever_is_later(self) -> None:
        assert straggler_threshold(median=0.02, mad=0.005) == 0.02 + 1.0
        assert straggler_threshold(median=5.0, mad=1.0) == 5.0 + 5 * 1.4826
        assert straggler_threshold(median=None, mad=None) is None
