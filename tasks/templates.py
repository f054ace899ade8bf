"""User-supplied templates (subscribers' payloads, workflows' reminders), rendered in one
place: Jinja2's immutable sandbox, which refuses Python internals."""

from functools import cache
from typing import TYPE_CHECKING, Any

from tasks.errors import PermanentError

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateRejected(PermanentError):
    """A template failed to render, or tried to escape the sandbox."""


def render_template(template: str, context: dict[str, Any], *, what: str) -> str:
    """`template` rendered with `context`; `what` names it in the error ("payload template")."""
    from jinja2 import TemplateError
    from jinja2.sandbox import SecurityError

    try:
        return _sandbox().from_string(template).render(context)
    except SecurityError as exc:
        raise TemplateRejected(f"{what} tried an unsafe operation: {exc}") from None
    except TemplateError as exc:
        raise TemplateRejected(f"{what} failed to render: {exc}") from None


@cache
def _sandbox() -> "ImmutableSandboxedEnvironment":
    # Imported on first use: most messages have no template, and flow runs start often.
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(autoescape=False)
