"""doc_md as Markdown with its HTML sanitised, and DAG code highlighted, escaped."""

from __future__ import annotations

from runs.web.docs import highlight_python, pygments_css, render_markdown


class MarkdownTests:
    def test_it_renders_markdown(self) -> None:
        html = render_markdown("# Title\n\nSome **bold** and a [link](https://example.com).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```")
        assert "<h1>Title</h1>" in html and "<strong>bold</strong>" in html and "<table>" in html and "<code>code" in html
        assert '<a href="https://example.com" rel="noopener noreferrer">link</a>' in html

    def test_it_removes_scripts_event_handlers_and_javascript_urls(self) -> None:
        html = render_markdown('Hi <script>alert(1)</script> <img src="x" onerror="alert(2)"> <a href="javascript:alert(3)">x</a>'
                               ' <iframe src="https://evil.example"></iframe> <b style="color:red" onclick="alert(4)">b</b>')
        assert "<script" not in html and "alert(1)" not in html
        assert "onerror" not in html and "onclick" not in html and "javascript:" not in html and "<iframe" not in html
        assert '<img src="x">' in html and "<b>b</b>" in html

    def test_it_renders_nothing_for_no_doc(self) -> None:
        assert render_markdown(None) == "" and render_markdown("") == ""


class CodeTests:
    def test_it_highlights_python_with_numbered_lines_escaped(self) -> None:
        html = highlight_python('x = "<script>alert(1)</script>"\n# comment\n')
        assert "<script>" not in html and "&lt;script&gt;" in html
        assert 'class="highlight"' in html and 'id="line-2"' in html and 'class="c1"' in html

    def test_its_css_has_light_dark_by_preference_and_a_dark_theme_hook(self) -> None:
        css = pygments_css()
        assert css.startswith("/*") and ".highlight .c1 {" in css
        assert "@media (prefers-color-scheme: dark)" in css and ":root:not([data-theme=light]) .highlight .c1" in css
        assert "[data-theme=dark] .highlight .c1" in css

    def test_the_stylesheet_in_static_is_the_generated_one(self) -> None:
        from pathlib import Path

        assert (Path(__file__).resolve().parents[3] / "static/css/pygments.css").read_text() == pygments_css()
