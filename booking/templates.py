"""User-supplied templates (subscribers' payloads, workflows' reminders): Mustache, the
language of Cal.com's `{{variable}}` templates, rendered with pystache in one contained path.

Mustache is logic-less: a template can only print values and repeat over lists in the data.
What is still bounded here: a template's size, the tags it may use (names only; no partials,
which would read files, no delimiter changes, no names reaching for Python attributes), how
often sections may repeat in one render (nested sections over lists multiply), and the
size of what it renders. A template that breaks a rule raises `InvalidTemplate`, when it is
saved and again when it is rendered.

Names are dotted paths into the data: `{{organizer.name}}`, `{{attendees.0.email}}`.
"""

import re
from collections.abc import Iterator
from typing import Any

MAX_TEMPLATE_CHARS = 16 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024
MAX_SECTION_ITEMS = 1000  # items all sections of one render may repeat over

_TAG = re.compile(r"\{\{(\{?)\s*([#^/!>&=]?)\s*(.*?)\s*\}?\}\}", re.DOTALL)
_NAME = re.compile(r"^(\.|[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*)$")


class InvalidTemplate(ValueError):
    """A template that may not be saved or rendered; the message says why."""


def check_template(template: str, *, what: str = "template") -> None:
    """Refuse what the renderer would refuse, without data: size, tags, syntax."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidTemplate(f"{what} is longer than {MAX_TEMPLATE_CHARS} characters")
    open_sections: list[str] = []
    for match in _TAG.finditer(template):
        brace, kind, name = match.groups()
        if kind == "!":
            continue
        if kind in ("#", "^"):
            open_sections.append(name)
        elif kind == "/" and (not open_sections or open_sections.pop() != name):
            raise InvalidTemplate(f"{what} is malformed: {_quote(match.group(0))} closes nothing")
        if brace or kind in ("&", ">", "="):
            raise InvalidTemplate(
                f"{what} uses an unsupported tag {_quote(match.group(0))}: only "
                "{{name}}, {{#section}}, {{^inverted}}, {{/end}} and {{!comments}}"
            )
        if not _NAME.match(name) or any(part.startswith("_") for part in name.split(".")):
            raise InvalidTemplate(f"{what} has an unsafe or malformed name {_quote(name)}")
    if open_sections:
        raise InvalidTemplate(
            f"{what} is malformed: section {_quote(open_sections[-1])} is not closed"
        )
    from pystache import parse
    from pystache.parser import ParsingError

    try:
        parse(template)
    except ParsingError as exc:
        raise InvalidTemplate(f"{what} is malformed: {_quote(str(exc), 120)}") from None


def render(template: str, context: dict[str, Any], *, what: str = "template") -> str:
    """`template` rendered over `context` (JSON-like data), within the bounds above."""
    check_template(template, what=what)
    from pystache import Renderer

    budget = _Budget(what)
    renderer = Renderer(escape=budget.emit, missing_tags="ignore", partials={})
    try:
        output = renderer.render(template, _wrap(context, budget))
    except InvalidTemplate:
        raise
    except Exception as exc:  # pystache's own errors: the template, not our data, is wrong
        raise InvalidTemplate(f"{what} failed to render: {type(exc).__name__}") from None
    if len(output) > MAX_OUTPUT_CHARS:
        raise InvalidTemplate(f"{what} renders to more than {MAX_OUTPUT_CHARS} characters")
    return output


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
