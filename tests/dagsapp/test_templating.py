"""Rendering the author's templates within limits: no template can stall or exhaust a process."""

from __future__ import annotations

import time

import pytest

from dagsapp import templating
from dagsapp.templating import TemplateLimitError, render_string


class LimitsTests:
    def test_it_renders_ordinary_templates(self) -> None:
        assert render_string("{{ a * 2 }}-{{ 'ab' * 2 }}-{{ 2 ** 10 }}-{% for i in range(3) %}{{ i }}{% endfor %}", {"a": 21}) == "42-abab-1024-012"

    def test_it_stops_nested_loops_after_the_time_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(templating, "MAX_RENDER_SECONDS", 0.2)
        started = time.monotonic()
        with pytest.raises(TemplateLimitError, match="took more than"):
            render_string("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", {})
        assert time.monotonic() - started < 2

    def test_it_refuses_a_huge_range(self) -> None:
        with pytest.raises(TemplateLimitError, match="range"):
            render_string("{% for i in range(10**9) %}{% endfor %}", {})

    @pytest.mark.parametrize("source", ["{{ 'x' * 10**8 }}", "{{ [0] * 10**8 }}", "{{ 10 ** 100000 }}", "{{ 7 ** (7 ** 7) }}"])
    def test_it_refuses_to_build_a_huge_value(self, source: str) -> None:
        with pytest.raises(TemplateLimitError):
            render_string(source, {})

    def test_it_stops_at_the_output_limit(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(templating, "MAX_OUTPUT_CHARS", 10_000)
        with pytest.raises(TemplateLimitError, match="output over 10000 characters"):
            render_string("{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", {})

    def test_it_keeps_the_sandbox(self) -> None:
        with pytest.raises(Exception, match="unsafe|access"):
            render_string("{{ ''.__class__.__mro__ }}", {})
