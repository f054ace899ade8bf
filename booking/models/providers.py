"""Calls to outside services in progress, counted against each service's cap."""

from sqlmodel import Field, SQLModel


class ProviderLease(SQLModel, table=True):
    """One call to an outside service in progress (tasks/caps.py): at most the provider's cap
    of unexpired rows exist at once. `expires_at` is seconds since the epoch."""

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(index=True)
    expires_at: float
