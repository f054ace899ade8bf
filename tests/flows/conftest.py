from collections.abc import Iterator

import pytest
from sqlmodel import Session

from booking.db import make_engine
from booking.settings import Settings


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    """A session on the database the flows under test read (this test's own)."""
    engine = make_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        yield session
    engine.dispose()
