"""The log viewer: one try's log as numbered, levelled, time-stamped lines, a window at a time.

A try's log is stored as text chunks (``runs/logs.py``). The page never holds more than one
window of lines (``WINDOW``), so a 50,000-line log opens as fast as a short one; search runs
here, over the whole text, and the page moves its window to the match. Stamps are written in
UTC by the workers (``[YYYY-MM-DD HH:MM:SS,mmm]``) and shown in the active Django time zone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WINDOW = 1000
# A live tail appends to the window; past this many lines the page is re-rendered at the end instead.
MAX_TAIL_LINES = 2 * WINDOW
MAX_QUERY_CHARS = 200
# How far back a window looks for the level of a traceback that started before it.
LEVEL_LOOKBACK = 200

_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[,.](\d{1,6}))?\] ?")
_LEVEL = re.compile(r"^(?:\{[^}]*\} )?(CRITICAL|FATAL|ERROR|WARNING|WARN|INFO|DEBUG)\b")
LEVEL_CLASSES = {"CRITICAL": "error", "FATAL": "error", "ERROR": "error", "WARNING": "warning", "WARN": "warning",
                 "INFO": "info", "DEBUG": "debug"}


@dataclass(frozen=True)
class LogLine:
    number: int
    stamp: datetime | None
    level: str  # "error", "warning", "info", "debug", or "" when the line names none
    text: str  # the line without its stamp
    html: SafeString  # ``text`` escaped, the search's matches in <mark>

    @property
    def local_stamp(self) -> str:
        if self.stamp is None:
            return ""
        local = timezone.localtime(self.stamp)
        return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


@dataclass
class LogWindow:
    lines: list[LogLine]
    start: int  # 1-based number of the first line shown
    total: int
    q: str = ""
    matches: list[int] = field(default_factory=list)  # line numbers of every match in the whole log
    match: int | None = None  # 0-based position in ``matches`` of the current one

    @property
    def end(self) -> int:
        return self.start + len(self.lines) - 1

    @property
    def at_end(self) -> bool:
        return self.end >= self.total

    @property
    def earlier_start(self) -> int | None:
        return max(1, self.start - WINDOW) if self.start > 1 else None

    @property
    def later_start(self) -> int | None:
        return self.end + 1 if not self.at_end else None

    @property
    def last_start(self) -> int:
        return last_window_start(self.total)

    @property
    def current_line(self) -> int | None:
        return self.matches[self.match] if self.match is not None else None

    @property
    def prev_match(self) -> int | None:
        if not self.matches:
            return None
        return (self.match - 1) % len(self.matches) if self.match is not None else len(self.matches) - 1

    @property
    def next_match(self) -> int | None:
        if not self.matches:
            return None
        return (self.match + 1) % len(self.matches) if self.match is not None else 0


def split_lines(text: str, *, complete_only: bool = False) -> list[str]:
    """The log's lines; a running try's last line may still be half written (``complete_only`` leaves it out)."""
    if not text:
        return []
    lines = text.split("\n")
    last = lines.pop()
    if last and not complete_only:
        lines.append(last)
    return lines


def last_window_start(total: int) -> int:
    return max(1, total - WINDOW + 1)


def _parse_stamp(raw: str, fraction: str | None) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(raw.replace(" ", "T"))
    except ValueError:
        return None
    micro = int((fraction or "0").ljust(6, "0")[:6])
    return stamp.replace(microsecond=micro, tzinfo=UTC)


def _level_of(rest: str) -> str:
    found = _LEVEL.match(rest)
    return LEVEL_CLASSES[found.group(1)] if found else ""


def _marked(text: str, q: str) -> SafeString:
    if not q:
        return mark_safe(escape(text))
    parts = re.split(f"({re.escape(q)})", text, flags=re.IGNORECASE)
    return mark_safe("".join(f"<mark>{escape(p)}</mark>" if i % 2 else escape(p) for i, p in enumerate(parts)))


def parse_lines(lines: list[str], first_number: int, *, q: str = "", level: str = "") -> list[LogLine]:
    """Lines numbered from ``first_number``; a line without a stamp (a traceback) carries the level before it."""
    out = []
    for offset, line in enumerate(lines):
        found = _STAMP.match(line)
        stamp = _parse_stamp(found.group(1), found.group(2)) if found else None
        rest = line[found.end():] if found else line
        if found:
            level = _level_of(rest)
        out.append(LogLine(first_number + offset, stamp, level, rest, _marked(rest, q)))
    return out


def _level_before(lines: list[str], index: int) -> str:
    for line in reversed(lines[max(0, index - LEVEL_LOOKBACK):index]):
        found = _STAMP.match(line)
        if found:
            return _level_of(line[found.end():])
    return ""


def find_matches(lines: list[str], q: str) -> list[int]:
    """Line numbers (1-based) of the lines that contain ``q``, case-insensitively, across the whole log."""
    needle = q.casefold()
    return [n for n, line in enumerate(lines, start=1) if needle in line.casefold()]


def log_window(lines: list[str], *, start: int | None = None, q: str = "", match: int | None = None) -> LogWindow:
    """The window the page shows: from ``start`` (the last window when None), or around match ``match`` of ``q``."""
    total = len(lines)
    q = q.strip()[:MAX_QUERY_CHARS]
    matches = find_matches(lines, q) if q else []
    current = None
    if matches and match is not None:
        current = min(max(match, 0), len(matches) - 1)
        # The match in the middle of its window, so the lines around it show on both sides.
        start = matches[current] - WINDOW // 2
    first = last_window_start(total) if start is None else min(max(start, 1), last_window_start(total))
    shown = lines[first - 1:first - 1 + WINDOW]
    parsed = parse_lines(shown, first, q=q, level=_level_before(lines, first - 1))
    return LogWindow(parsed, first, total, q=q, matches=matches, match=current)
