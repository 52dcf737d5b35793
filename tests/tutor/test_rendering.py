"""Messages' Markdown becomes safe HTML: formulas kept for KaTeX, code kept as code,
anything that could run or restyle the page removed."""

import re

import pytest

from tutor.rendering import render_markdown

pytestmark = pytest.mark.django_db


def test_markdown_basics_render():
    html = render_markdown("**bold**, *italic*, `code`\n\n- one\n- two")
    assert "<strong>bold</strong>" in html and "<em>italic</em>" in html and "<code>code</code>" in html
    assert "<ul>" in html and "<li>one</li>" in html


def test_formulas_keep_their_delimiters_and_markdown_leaves_them_alone():
    html = render_markdown(r"Inline $a_1 * b_2$, \(x_1\), and display $$\frac{1}{2}$$ or \[y^2\]")
    assert '<span class="math math-inline">$a_1 * b_2$</span>' in html
    assert r'<span class="math math-inline">\(x_1\)</span>' in html
    assert r'<span class="math math-display">$$\frac{1}{2}$$</span>' in html
    assert r'<span class="math math-display">\[y^2\]</span>' in html
    assert "<em>" not in html


def test_prices_are_not_formulas():
    assert "math" not in render_markdown("It costs $5 and $10 today.")
    assert "math" not in render_markdown(r"Escaped \$x\$ is text.")


def test_code_blocks_stay_code_and_formulas_inside_code_are_not_marked():
    html = render_markdown("```python\nprint('<b>$x$</b>')\n```\n\nand `$y$`")
    assert "<pre><code>" in html and "&lt;b&gt;" in html
    assert "math" not in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        '<a href="javascript:alert(1)">x</a>',
        '<p style="color:red">red</p>',
        "$<img src=x onerror=alert(1)>$",
    ],
)
def test_hostile_markup_is_inert(hostile):
    html = render_markdown(hostile)
    tags = re.findall(r"<[^>]*>", html)  # live tags only: escaped text (&lt;img ...) is fine
    assert not [tag for tag in tags if re.search(r"script|img|on\w+=|style=|javascript:", tag)], html


def test_links_open_safely_and_headings_sit_under_the_page():
    html = render_markdown("# Title\n\n[site](https://example.org)")
    assert "<h3>Title</h3>" in html
    assert 'href="https://example.org"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_nothing_for_nothing():
    assert render_markdown("") == ""
