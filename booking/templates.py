"""User-supplied templates (subscribers' payloads, workflows' reminders): Mustache, the
language of Cal.com's `{{variable}}` templates, rendered with pystache in one contained path.

Mustache is logic-less: a template can only print values and repeat over lists in the data.
What is still bounded here: a template's size, the tags it may use (names only; no partials,
which would read files, no delimiter changes, no names reaching for Python attributes), how
often sections may repeat in one render (nested sections over lists multiply), and the
size of what it renders. A template that breaks a rule raises `InvalidTemplate`, when it is
saved and again when it is rendered. Templates are parsed here, in time linear in their
length (pystache's own parser backtracks on unclosed tags and blanks); pystache renders the
tree.

Names are dotted paths into the data: `{{organizer.name}}`, `{{attendees.0.email}}`.
"""

import re
from collections.abc import Iterator
from typing import Any

from pystache.parsed import ParsedTemplate

MAX_TEMPLATE_CHARS = 16 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024
MAX_SECTION_ITEMS = 1000  # items all sections of one render may repeat over

# A name's shape; no quantified group can match the same text two ways, so it cannot
# backtrack (and it only ever sees one tag's text).
_NAME = re.compile(r"(?:\.|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)")
_KINDS = "!>&/#^"  # the tag kinds Mustache spells with one character after `{{`
_LINE_ENDS = "\r\n"


class InvalidTemplate(ValueError):
    """A template that may not be saved or rendered; the message says why."""


def check_template(template: str, *, what: str = "template") -> None:
    """Refuse what the renderer would refuse, without data: size, tags, syntax."""
    _parse(template, what)


def render(template: str, context: dict[str, Any], *, what: str = "template") -> str:
    """`template` rendered over `context` (JSON-like data), within the bounds above."""
    parsed = _parse(template, what)
    from pystache import Renderer

    budget = _Budget(what)
    renderer = Renderer(escape=budget.emit, missing_tags="ignore", partials={})
    try:
        output = renderer.render(parsed, _wrap(context, budget))
    except InvalidTemplate:
        raise
    except Exception as exc:  # pystache's own errors: the template, not our data, is wrong
        raise InvalidTemplate(f"{what} failed to render: {type(exc).__name__}") from None
    if len(output) > MAX_OUTPUT_CHARS:
        raise InvalidTemplate(f"{what} renders to more than {MAX_OUTPUT_CHARS} characters")
    return output


def _parse(template: str, what: str) -> ParsedTemplate:
    """The template's parse tree, as pystache's parser reads it (the same tags, the same
    standalone lines), found by one forward scan: every step moves on, so checking takes
    time linear in the template's length whatever it holds. pystache's own parser is a
    regular expression that backtracks for minutes on unclosed tags and runs of blanks.

    A tag is `{{`, blanks, an optional kind character, blanks, then a name of at least one
    character running to the first `}}` after it (blanks before `}}` are not the name's).
    A `{{` with no such `}}` after it is text, and so is everything after it.
    """
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidTemplate(f"{what} is longer than {MAX_TEMPLATE_CHARS} characters")
    size = len(template)
    tree = ParsedTemplate()
    sections: list[tuple[str, str, ParsedTemplate]] = []  # kind, name, the enclosing tree
    text_from = 0  # where the text not yet added to the tree starts
    while (opened := template.find("{{", text_from)) >= 0:
        at = _skip_blanks(template, opened + 2)
        kind = template[at] if at < size and template[at] in _KINDS else ""
        at = _skip_blanks(template, at + 1) if kind else at
        closed = template.find("}}", at + 1)
        if closed < 0:
            if template.startswith("}}", at) and at > opened + 2:
                # `{{ }}`, `{{#}}`: pystache reads a tag whose name is the blank or kind
                raise InvalidTemplate(
                    f"{what} has an unsafe or malformed name {_quote(template[opened : at + 2])}"
                )
            break
        name = template[at:closed].rstrip()
        tag = template[opened : closed + 2]
        # A tag alone on its line (but a name's) takes the line with it, as in pystache.
        starts = opened
        while starts > text_from and template[starts - 1] in " \t":
            starts -= 1
        after = closed + 2
        alone = (starts == 0 or template[starts - 1] in _LINE_ENDS) and (
            after == size or template[after] in _LINE_ENDS
        )
        if alone and kind not in ("", "&"):
            after += template.startswith("\r", after)
            after += template.startswith("\n", after)
        else:
            starts = opened
        if starts > text_from:
            tree.add(template[text_from:starts])
        text_from = after

        if kind == "!":
            continue
        if kind in ("&", ">") or name[:1] in ("{", "="):
            raise InvalidTemplate(
                f"{what} uses an unsupported tag {_quote(tag)}: only "
                "{{name}}, {{#section}}, {{^inverted}}, {{/end}} and {{!comments}}"
            )
        if kind == "/":
            if not sections or sections[-1][1] != name:
                raise InvalidTemplate(f"{what} is malformed: {_quote(tag)} closes nothing")
            opening, _, enclosing = sections.pop()
            node = _Section(name, tree) if opening == "#" else _Inverted(name, tree)
            tree = enclosing
            tree.add(node)
            continue
        if not _NAME.fullmatch(name) or any(part.startswith("_") for part in name.split(".")):
            raise InvalidTemplate(f"{what} has an unsafe or malformed name {_quote(name)}")
        if kind in ("#", "^"):
            sections.append((kind, name, tree))
            tree = ParsedTemplate()
        else:
            tree.add(_Value(name))
    if sections:
        raise InvalidTemplate(
            f"{what} is malformed: section {_quote(sections[-1][1])} is not closed"
        )
    if text_from < size:
        tree.add(template[text_from:])
    return tree


def _skip_blanks(template: str, at: int) -> int:
    while at < len(template) and template[at].isspace():  # the blanks `\s` matches
        at += 1
    return at


# Nodes of a parse tree (pystache's `ParsedTemplate` renders any object with a
# `render(engine, context)` method), rendered as pystache renders its own.
class _Value:
    """`{{name}}`: the value, through the renderer's escape function."""

    def __init__(self, name: str):
        self.name = name

    def render(self, engine: Any, context: Any) -> str:
        return engine.escape(engine.fetch_string(context, self.name))


class _Section:
    """`{{#name}}...{{/name}}`: the body once per item of a list, once for any other value
    that is not empty or false."""

    def __init__(self, name: str, body: ParsedTemplate):
        self.name, self.body = name, body

    def render(self, engine: Any, context: Any) -> str:
        parts = []
        for value in engine.fetch_section_data(context, self.name):
            context.push(value)
            parts.append(self.body.render(engine, context))
            context.pop()
        return "".join(parts)


class _Inverted:
    """`{{^name}}...{{/name}}`: the body once when the value is missing, empty or false."""

    def __init__(self, name: str, body: ParsedTemplate):
        self.name, self.body = name, body

    def render(self, engine: Any, context: Any) -> str:
        if engine.resolve_context(context, self.name):
            return ""
        return self.body.render(engine, context)


class _Budget:
    """Counts what one render repeats and prints; raises once it is over the bounds."""

    def __init__(self, what: str):
        self.what = what
        self.items = 0
        self.chars = 0

    def item(self) -> None:
        self.items += 1
        if self.items > MAX_SECTION_ITEMS:
            raise InvalidTemplate(
                f"{self.what} repeats sections more than {MAX_SECTION_ITEMS} times"
            )

    def emit(self, value: str) -> str:
        """pystache's escape hook: printed values pass unchanged (no HTML escaping) and
        are counted."""
        self.chars += len(value)
        if self.chars > MAX_OUTPUT_CHARS:
            raise InvalidTemplate(f"{self.what} renders to more than {MAX_OUTPUT_CHARS} characters")
        return value


class _Items:
    """A list as a section sees it: each item repeated is counted, and `list.0` indexes."""

    __slots__ = ("_budget", "_values")

    def __init__(self, values: list[Any], budget: _Budget):
        self._values = values
        self._budget = budget

    def __iter__(self) -> Iterator[Any]:
        for value in self._values:
            self._budget.item()
            yield value

    def __len__(self) -> int:
        return len(self._values)

    def __getattr__(self, name: str) -> Any:
        if name.isdigit() and int(name) < len(self._values):
            return self._values[int(name)]
        raise AttributeError(name)

    def __str__(self) -> str:
        return ", ".join(str(value) for value in self._values)


def _wrap(value: Any, budget: _Budget) -> Any:
    if isinstance(value, dict):
        return {str(key): _wrap(item, budget) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return _Items([_wrap(item, budget) for item in value], budget)
    return value


def _quote(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
