from collections.abc import Iterator

import pytest
from sqlmodel import Session

from booking.db import make_engine
from booking.settings import Settings
from local.stack import free_port
from tests.helpers import Inbox


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
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    configure(smtp_host="127.0.0.1", smtp_port=str(port))
    yield inbox
    controller.stop()
