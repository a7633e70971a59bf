"""larp.analysis.html: the report pages are the Markdown's tables as HTML, escaped by markdown-it."""

from __future__ import annotations

from larp.analysis.html import markdown_page

MD = """# Results <b>bold?</b>

Intro with `inline <code>` and a list:

- first
- second

| Method | PSNR | note |
|---|---|---|
| LARP | 27.88 | a \\| b |
| <script>alert(1)</script> | 20.00 | ok |
| Patchwise | 19.50 | - |
"""


def test_a_pipe_table_becomes_one_html_table(html_tables):
    page = markdown_page(MD, "Table <1> & co")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    (table,), tags = html_tables(page)
    assert tags["tr"] == 4 and tags["th"] == 3 and tags["td"] == 9  # header row + three body rows
    assert table[0] == ["Method", "PSNR", "note"]
    assert table[1] == ["LARP", "27.88", "a | b"]  # an escaped pipe is cell text, not a column break
    assert [r[0] for r in table[1:]] == ["LARP", "<script>alert(1)</script>", "Patchwise"]
    assert tags["h1"] == 1 and tags["li"] == 2 and tags["code"] == 1 and tags["ul"] == 1


def test_markup_in_the_markdown_is_escaped_not_injected(html_tables):
    page = markdown_page(MD, "Table <1> & co")
    _, tags = html_tables(page)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "script" not in tags and "b" not in tags  # raw HTML is disabled: no element from the text
    assert "<code>inline &lt;code&gt;</code>" in page
    assert "<title>Table &lt;1&gt; &amp; co</title>" in page


def test_the_page_is_self_contained_with_its_css():
    page = markdown_page(MD, "t")
    assert "<style>" in page and "overflow-x: auto" in page and "monospace" in page and "border" in page
    assert "<link" not in page and "src=" not in page and "http" not in page
