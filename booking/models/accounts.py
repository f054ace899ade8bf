"""Hosts, teams and what hosts have connected: push devices and chat accounts."""

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from booking.models.types import UTCDateTime
from booking.timeutil import utcnow


class User(SQLModel, table=True):
    """A host who owns event types and receives bookings."""

    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str = Field(unique=True, index=True)
    username: str | None = Field(default=None, unique=True, index=True)  # booking page URL
    locale: str = "en"
    time_zone: str = "UTC"
    time_format: int = 24
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class Team(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    slug: str = Field(unique=True)


class Membership(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("team_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    role: str = "MEMBER"


class PushDevice(SQLModel, table=True):
    """A mobile device token a host registered for push notifications."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token: str = Field(unique=True)
    platform: str = "android"
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))


class ChatAccount(SQLModel, table=True):
    """A chat workspace account a host connected for booking sync."""

    __table_args__ = (UniqueConstraint("user_id", "account_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    account_id: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
