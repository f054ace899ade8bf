"""Every webhook body a test's subscriber receives is checked against its trigger's published
JSON Schema (docs/schemas), with the `jsonschema` library: the `httpserver` fixture in
tests/conftest.py calls `check_webhook_bodies` as each test ends."""

import json
from collections.abc import Iterable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from werkzeug import Request

from tasks.delivery.schemas import SCHEMA_DIR

ENVELOPE = {"triggerEvent", "createdAt", "payload"}


@cache
def validator(trigger: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{trigger}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(body: dict[str, Any]) -> list[str]:
    """What in `body` its trigger's schema refuses, one line each; empty when it conforms."""
    trigger = body.get("triggerEvent")
    if not (SCHEMA_DIR / f"{trigger}.json").is_file():
        return [f"no published schema for triggerEvent {trigger!r}"]
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message}"
        for error in validator(trigger).iter_errors(body)
    ]


def webhook_body(request: Request) -> dict[str, Any] | None:
    """The body of a webhook sent without a payload template, or None for anything else."""
    if request.method != "POST" or "webhook-id" not in request.headers:
        return None
    if request.mimetype != "application/json":
        return None
    body = json.loads(request.get_data())
    return body if isinstance(body, dict) and set(body) == ENVELOPE else None


def check_webhook_bodies(requests: Iterable[Request]) -> int:
    """Raise AssertionError naming each body its schema refuses; the number checked."""
    checked, refused = 0, []
    for request in requests:
        if (body := webhook_body(request)) is None:
            continue
        checked += 1
        if errors := schema_errors(body):
            refused.append(f"{body.get('triggerEvent')} to {request.path}: {'; '.join(errors)}")
    assert not refused, "webhook bodies that break their published schema:\n" + "\n".join(refused)
    return checked
