"""One self-contained HTML page from the Markdown a report stage writes (Table 1, Table 2, the claims).

Snakemake's HTML report (``snakemake --report``) shows images, PDFs and HTML items inline but offers Markdown and
CSV items only as downloads, so each report writer also publishes this rendering of exactly the Markdown it writes.
Rendering is markdown-it-py (CommonMark plus GitHub-style pipe tables) with raw HTML disabled: every character of a
table cell reaches the page escaped by markdown-it, so a cell cannot inject markup.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

# minimal, inline (the page travels alone inside the report): bordered tables that scroll sideways when wide,
# monospace code
CSS = """\
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; line-height: 1.45;
       margin: 1.5em; color: #1f2328; max-width: 100%; }
.table-wrap { overflow-x: auto; margin: 1em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #9aa4ae; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
thead th { background: #eef1f4; }
tbody tr:nth-child(even) { background: #f7f8fa; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
            font-size: 0.9em; background: #f0f2f4; border-radius: 3px; padding: 0.1em 0.3em; }
pre { padding: 0.6em; overflow-x: auto; }
pre code { background: none; padding: 0; }
"""


def _table_open(self, tokens, idx, options, env) -> str:  # a scroll box around each table (bound to the renderer)
    return '<div class="table-wrap">\n' + self.renderToken(tokens, idx, options, env)


def _table_close(self, tokens, idx, options, env) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("table_open", _table_open)
    md.add_render_rule("table_close", _table_close)
    return md


def markdown_page(markdown_text: str, title: str) -> str:
    """``markdown_text`` rendered as one complete HTML document titled ``title`` (its CSS inline, nothing linked)."""
    body = _renderer().render(markdown_text)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{escapeHtml(title)}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n{body}</body>\n</html>\n")


__all__ = ["markdown_page"]
