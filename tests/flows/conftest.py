from collections.abc import Iterator

import pytest
from sqlmodel import Session

from booking.db import make_engine
from booking.settings import Settings
from tests.helpers import Inbox, smtp_server


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    """A session on the database the flows under test read (this test's own)."""
    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()


@pytest.fixture
def smtp(configure) -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on loopback that the flows under test send to."""
    with smtp_server() as inbox:
        configure(smtp_host="127.0.0.1", smtp_port=str(inbox.port))
        yield inbox
