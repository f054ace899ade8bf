"""The README's Deploying steps, run as written on fresh PostgreSQL databases, reach one
delivered webhook. Only names are changed: the databases, the server's port and its log get
names of this test's own, so it runs beside anything else on the machine."""

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlmodel import Session

from booking.db import make_engine
from booking.service import create_booking
from booking.settings import PROJECT_ROOT, Settings
from handoff.dispatch import PostCommitDispatcher
from local import postgres
from local.stack import free_port
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import pg_reachable

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not pg_reachable(), reason="needs PostgreSQL on 127.0.0.1"),
]


def deploying_steps() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("\n## Deploying\n", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_the_readme_deploying_steps_deliver_a_webhook(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    prefect_db, bookings_db, port = f"deploy_prefect_{run}", f"deploy_bookings_{run}", free_port()
    steps = deploying_steps()
    assert "prefect server start" in steps and "python -m worker" in steps
    names = [  # every place the steps name a database, the port or the server's log
        (
            "createdb -h 127.0.0.1 -U postgres prefect\n",
            f"createdb -h 127.0.0.1 -U postgres {prefect_db}\n",
        ),
        ("-d prefect ", f"-d {prefect_db} "),
        ("5432/prefect ", f"5432/{prefect_db} "),
        (
            "createdb -h 127.0.0.1 -U postgres bookings\n",
            f"createdb -h 127.0.0.1 -U postgres {bookings_db}\n",
        ),
        ("5432/bookings\n", f"5432/{bookings_db}\n"),
        ("4200", str(port)),
        ("> prefect-server.log", f"> {tmp_path / 'prefect-server.log'}"),
    ]
    script = steps
    for name, ours in names:
        assert name in script, name
        script = script.replace(name, ours)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "BOOKING_", "VIRTUAL_ENV"))
    }
    env |= {
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        # A worker's settings for a subscriber on loopback, as the README's table says.
        "BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    }
    output = tmp_path / "steps.log"
    with output.open("wb") as log:
        steps_run = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while not re.search(rb"Worker '.*' started", output.read_bytes()):
            assert steps_run.poll() is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline, output.read_text()[-3000:]
            time.sleep(1)

        httpserver.expect_request("/deployed").respond_with_data("ok")
        engine = make_engine(postgres.url(postgres.DEFAULT_DSN, bookings_db))
        settings = Settings(prefect_api_url=f"http://127.0.0.1:{port}/api")
        with (
            Session(engine) as session,
            PostCommitDispatcher(engine=engine, settings=settings) as dispatcher,
        ):
            event_type = make_event_type(session)
            make_subscription(
                session,
                httpserver.url_for("/deployed"),
                ["BOOKING_CREATED"],
                event_type_id=event_type.id,
            )
            create_booking(booking_request(event_type), session=session, handoff=dispatcher)
        while not httpserver.log:
            assert steps_run.poll() is None, output.read_text()[-3000:]
            assert time.monotonic() < deadline + 120, output.read_text()[-3000:]
            time.sleep(0.5)
        engine.dispose()
    finally:
        os.killpg(steps_run.pid, signal.SIGKILL)  # the server, the worker and its runs
        steps_run.wait()
        time.sleep(1)
        for name in (prefect_db, bookings_db):
            postgres.drop_database(name)

    (request, _) = httpserver.log[0]
    assert request.headers["webhook-id"].startswith("msg_")
