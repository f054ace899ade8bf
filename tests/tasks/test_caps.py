"""Each outside service's cap (BOOKING_PROVIDER_CAPS), held in the bookings database: across
worker processes a provider never has more calls in flight than its cap."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlmodel import Session, func, select

from booking.models import ProviderLease
from booking.settings import PROJECT_ROOT
from tasks.caps import LEASE_SECONDS, provider_slot, release, try_acquire


class InFlight:
    """A provider on loopback that answers after `delay` s and counts requests in flight."""

    def __init__(self, delay: float):
        self.delay = delay
        self.now = self.most = self.served = 0
        self.lock = threading.Lock()

    @contextmanager
    def serving(self) -> Iterator[str]:
        counter = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with counter.lock:
                    counter.now += 1
                    counter.most = max(counter.most, counter.now)
                time.sleep(counter.delay)
                with counter.lock:
                    counter.now -= 1
                    counter.served += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}/events"
        finally:
            server.shutdown()
            server.server_close()


# One worker process: `threads` calls at once, each in a slot of the analytics cap.
WORKER = """
import sys, threading, httpx
from tasks.caps import provider_slot
url, threads = sys.argv[1], int(sys.argv[2])
def call():
    with provider_slot("analytics"):
        httpx.post(url, content=b"{}", timeout=30).raise_for_status()
workers = [threading.Thread(target=call) for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
"""


def test_two_worker_processes_never_have_more_calls_in_flight_than_the_cap(
    configure, session: Session
) -> None:
    configure(provider_caps=json.dumps({"analytics": 3}))
    provider = InFlight(delay=0.3)
    with provider.serving() as url:
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, url, "6"], cwd=PROJECT_ROOT)
            for _ in range(2)
        ]
        assert [worker.wait(timeout=120) for worker in workers] == [0, 0]

    assert provider.served == 12  # every call was made: a full cap waits, it does not fail
    assert provider.most <= 3
    assert session.exec(select(func.count()).select_from(ProviderLease)).one() == 0


def test_a_slot_whose_holder_died_lapses_and_is_cleared(configure, session: Session) -> None:
    configure()
    long_ago = time.time() - LEASE_SECONDS - 1
    dead = [try_acquire("push", 2, now=long_ago) for _ in range(2)]  # a killed worker's
    assert None not in dead
    assert try_acquire("push", 2, now=long_ago + 1) is None  # both still held then

    taken = try_acquire("push", 2)  # now both have lapsed
    assert taken is not None
    release("push", taken)

    assert session.exec(select(func.count()).select_from(ProviderLease)).one() == 0


def test_the_cap_is_per_provider(configure) -> None:
    configure()
    assert try_acquire("chat", 1) is not None
    assert try_acquire("chat", 1) is None
    assert try_acquire("analytics", 1) is not None


def test_a_provider_without_a_cap_is_a_bug_named_at_once(configure) -> None:
    configure()
    with pytest.raises(KeyError, match="no cap for 'email'"), provider_slot("email"):
        pass


def test_a_slot_that_cannot_be_given_back_does_not_fail_the_call_made(
    configure, session: Session, caplog
) -> None:
    """The call is made when the slot is given back: failing then would make it again on a
    retry. The slot lapses instead."""
    from sqlalchemy import text

    configure()
    with caplog.at_level("WARNING", logger="tasks.caps"), provider_slot("chat"):
        session.execute(text("DROP TABLE providerlease"))  # the database loses the slot
        session.commit()

    assert "could not give back a chat slot (it lapses in 300 s)" in caplog.messages
