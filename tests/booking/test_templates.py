"""The template checker reads templates as pystache's parser does, in one forward scan.

The reference is pystache's own parser (a backtracking regular expression) with the rules
of `booking/templates.py` applied to its parse tree. Shapes are kept small, where pystache
is quick; the shapes that made it backtrack for minutes are run at the size limit against
the checker alone (hypothesis's per-example deadline catches a runaway; the time bound
itself is measured by `python -m bench.templates`).
"""

import contextlib
import re
from datetime import timedelta

import pystache
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pystache.parser import ParsingError

from booking.templates import MAX_TEMPLATE_CHARS, InvalidTemplate, check_template, render

NAME_OK = re.compile(r"\.|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")

# Pieces that make every tag kind, unclosed and nested braces, and runs of blanks.
PIECES = [
    "{{", "}}", "{", "}", " ", "   ", "\t", "\n", "\r\n", "#", "^", "/", "!", "&", ">", "=",
    "a", "b", "a.b", ".", "_x", "x y", "{{a}}", "{{ b }}", "{{#a}}", "{{/a}}", "{{^f}}",
    "{{/f}}", "{{! note }}", "{{{a}}}", "{{&a}}", "{{>p}}", "{{=<% %>=}}", "\n{{#a}}\n",
    "\n  {{/a}}  \n", "text",
]  # fmt: skip
templates = st.lists(st.sampled_from(PIECES), max_size=30).map("".join)
CONTEXT = {"a": {"b": "in a"}, "b": "B", "x": "X", "f": False, "t": True, "e": ""}


def pystache_verdict(template: str) -> bool:
    """Whether pystache parses the template into only the tags our rules allow."""
    try:
        tree = pystache.parse(template, raise_on_mismatch=True)
    except ParsingError:
        return False

    def allowed(tree) -> bool:
        for node in tree._parse_tree:
            kind = type(node).__name__
            if kind in ("str", "_CommentNode"):
                continue
            if kind not in ("_EscapeNode", "_SectionNode", "_InvertedNode"):
                return False
            key = node.key
            if not NAME_OK.fullmatch(key) or any(p.startswith("_") for p in key.split(".")):
                return False
            body = getattr(node, "parsed", None) or getattr(node, "parsed_section", None)
            if body is not None and not allowed(body):
                return False
        return True

    return allowed(tree)


def verdict(template: str) -> bool:
    try:
        check_template(template)
    except InvalidTemplate:
        return False
    return True


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(templates)
def test_the_checker_agrees_with_pystache_and_renders_what_pystache_renders(
    template: str,
) -> None:
    assert verdict(template) == pystache_verdict(template), template
    if verdict(template):
        expected = pystache.Renderer(escape=lambda s: s, missing_tags="ignore").render(
            template, CONTEXT
        )
        assert render(template, CONTEXT) == expected


def adversarial(piece: str, tail: str = "") -> str:
    return (piece * (MAX_TEMPLATE_CHARS // max(len(piece), 1)))[
        : MAX_TEMPLATE_CHARS - len(tail)
    ] + tail


# What made the old checker backtrack: an unclosed tag and runs of blanks, at the size limit.
@settings(max_examples=60, deadline=timedelta(seconds=1))
@given(
    st.sampled_from(["{{", "{{ ", "{{#", " ", "\t", "{{\t ", "{{{", "{{ a", "}", "{"]),
    st.sampled_from(["", "{{", "}}", "x", "{{ x"]),
    st.sampled_from([1, 7, 1000]),
)
def test_shapes_that_backtracked_are_read_in_one_pass(piece: str, tail: str, run: int) -> None:
    head = piece[:2] + piece[2:] * run if piece.startswith("{{") else piece
    template = adversarial(head, tail)
    assert len(template) <= MAX_TEMPLATE_CHARS
    verdict(template)
    with contextlib.suppress(InvalidTemplate):
        render(template, CONTEXT)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{" + " " * 1000, None),  # an unclosed `{{` is text, as pystache reads it
        ("{{ }}", "malformed name"),
        ("{{#a}}", "is not closed"),
        ("{{/a}}", "closes nothing"),
        ("{{&a}}", "unsupported tag"),
        ("{{{a}}}", "unsupported tag"),
        ("{{a.__class__}}", "unsafe or malformed name"),
        ("x" * (MAX_TEMPLATE_CHARS + 1), "longer than"),
    ],
)
def test_one_clear_reason(template: str, reason: str | None) -> None:
    if reason is None:
        check_template(template)
        return
    with pytest.raises(InvalidTemplate, match=reason):
        check_template(template)
