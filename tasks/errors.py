"""How a step fails: a transient fault that another attempt may fix, or a permanent one.

Messages name the provider or host and the status, never a body, a URL's path or a secret.
"""


class TransientError(Exception):
    """Worth another attempt: a provider answered 5xx or 429, maybe with `Retry-After`."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        self.retry_after = retry_after
        super().__init__(message)


class PermanentError(Exception):
    """Another attempt cannot fix it: a 4xx answer, a refused URL, a rejected template."""
