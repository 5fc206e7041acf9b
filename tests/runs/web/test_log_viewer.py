"""The log viewer's reading of a try's log: lines, levels, stamps in the active zone, windows, search."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone

from runs.web.log_viewer import WINDOW, log_window, parse_lines, split_lines
from runs.web.views.logs import lines_html

LOG = """\
[2026-01-02 10:00:00,123] {dagsapp.task} INFO - Starting attempt 1 of 1
[2026-01-02 10:00:01,000] {my.logger} WARNING - disk at 91%
[2026-01-02 10:00:02,500] {dagsapp.task} ERROR - Task failed
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ValueError: boom
[2026-01-02 10:00:03,000] {dagsapp.task} DEBUG - cleanup
[2026-01-02 10:00:04] Marking task as FAILED
"""


class LogLineTests:
    def test_it_reads_stamps_as_utc_and_levels_and_a_traceback_keeps_its_level(self) -> None:
        lines = parse_lines(split_lines(LOG), 1)
        assert [line.level for line in lines] == ["info", "warning", "error", "error", "error", "error", "debug", ""]
        assert lines[0].stamp == datetime(2026, 1, 2, 10, 0, 0, 123000, tzinfo=UTC)
        assert lines[0].text == "{dagsapp.task} INFO - Starting attempt 1 of 1"
        assert lines[3].stamp is None and lines[3].text == "Traceback (most recent call last):"

    def test_it_shows_stamps_in_the_active_time_zone(self) -> None:
        line = parse_lines(split_lines(LOG), 1)[0]
        with timezone.override("Asia/Kolkata"):
            assert line.local_stamp == "2026-01-02 15:30:00.123"
        with timezone.override("America/New_York"):
            assert line.local_stamp == "2026-01-02 05:00:00.123"

    def test_it_leaves_a_half_written_last_line_out_while_the_try_runs(self) -> None:
        assert split_lines("a\nb\nhalf", complete_only=True) == ["a", "b"]
        assert split_lines("a\nb\nhalf") == ["a", "b", "half"]
        assert split_lines("a\n") == ["a"] and split_lines("") == []

    def test_it_escapes_every_line(self) -> None:
        html = lines_html(parse_lines(["[2026-01-02 10:00:00] <script>alert(1)</script> <img src=x onerror=alert(2)>"], 1, q="script"))
        assert "<script>" not in html and "<img" not in html
        assert "&lt;<mark>script</mark>&gt;alert(1)&lt;/<mark>script</mark>&gt;" in html


class LogWindowTests:
    lines = [f"[2026-01-02 10:00:00] line {n}" + (" needle" if n in (10, 25_000, 49_990) else "") for n in range(1, 50_001)]

    def test_it_opens_at_the_end_one_window_long(self) -> None:
        window = log_window(self.lines)
        assert (window.start, window.end, window.total, len(window.lines)) == (50_001 - WINDOW, 50_000, 50_000, WINDOW)
        assert window.at_end and window.later_start is None and window.earlier_start == 50_001 - 2 * WINDOW

    def test_it_clamps_a_start_past_either_end(self) -> None:
        assert log_window(self.lines, start=1).start == 1
        assert log_window(self.lines, start=10**9).start == 50_001 - WINDOW
        assert log_window(["a", "b"], start=5).start == 1

    def test_it_searches_the_whole_log_and_centres_the_match_it_moves_to(self) -> None:
        window = log_window(self.lines, q="NEEDLE")
        assert window.matches == [10, 25_000, 49_990] and window.match is None and window.next_match == 0
        second = log_window(self.lines, q="needle", match=1)
        assert second.current_line == 25_000 and second.start == 25_000 - WINDOW // 2
        assert (second.prev_match, second.next_match) == (0, 2)
        first = log_window(self.lines, q="needle", match=0)
        assert first.start == 1 and first.prev_match == 2  # wraps around
        assert log_window(self.lines, q="needle", match=99).current_line == 49_990
        assert log_window(self.lines, q="no such thing", match=0).matches == []
