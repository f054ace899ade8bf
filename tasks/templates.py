"""Templates on the post-commit side: the one contained renderer of `booking.templates`,
its refusal made a permanent step error (sending again cannot fix a template)."""

from typing import Any

from booking.templates import InvalidTemplate, render
from tasks.errors import PermanentError


class TemplateRejected(PermanentError):
    """A template is not allowed, is malformed, or renders beyond the bounds."""


def render_template(template: str, context: dict[str, Any], *, what: str) -> str:
    """`template` rendered with `context`; `what` names it in the error ("payload template")."""
    try:
        return render(template, context, what=what)
    except InvalidTemplate as exc:
        raise TemplateRejected(str(exc)) from None
