"""User-supplied templates (subscribers' payloads, workflows' reminders), rendered in one
place: Jinja2's immutable sandbox, which refuses Python internals."""

from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from tasks.errors import PermanentError

_sandbox = ImmutableSandboxedEnvironment(autoescape=False)


class TemplateRejected(PermanentError):
    """A template failed to render, or tried to escape the sandbox."""


def render_template(template: str, context: dict[str, Any], *, what: str) -> str:
    """`template` rendered with `context`; `what` names it in the error ("payload template")."""
    try:
        return _sandbox.from_string(template).render(context)
    except SecurityError as exc:
        raise TemplateRejected(f"{what} tried an unsafe operation: {exc}") from None
    except TemplateError as exc:
        raise TemplateRejected(f"{what} failed to render: {exc}") from None
