"""Helpers the tests import (fixtures live in the conftest files, helpers here)."""

import asyncio
import contextlib
import email
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun, TaskRun

from deployments.names import booking_tag
from local import postgres

if TYPE_CHECKING:
    from local.stack import LocalPrefect

# Settings every test runs with, in the test process (the `configure` fixture) and in the
# workers of the stacks tests start: subscribers are real servers on loopback, so exactly
# that is allowed, and retries are quick.
TEST_SETTINGS = {
    "BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    "BOOKING_WEBHOOK_RETRIES": "3",
    "BOOKING_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "1.0",
    "BOOKING_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1.0",
    "BOOKING_PROVIDER_RETRIES": "2",
    "BOOKING_PROVIDER_RETRY_BASE_SECONDS": "0.05",
}


# CI sets CI=true: there the PostgreSQL tests must run, never skip.
PG_DSN = os.environ.get("BOOKING_TEST_POSTGRES_DSN", postgres.DEFAULT_DSN)
REQUIRE_PG = os.environ.get("CI", "").lower() == "true"


def pg_reachable() -> bool:
    try:
        postgres.admin(PG_DSN).close()
    except psycopg.OperationalError:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required in CI but unreachable ({PG_DSN})")
        return False
    return True


def run_temp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of this test run that every xdist worker of it shares."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


class SharedServer:
    """The run's one Prefect server, started and stopped under a file lock by whichever
    xdist worker is first and last; its PostgreSQL database lives and dies with it."""

    def __init__(self, shared: Path):
        self.lock_path = shared / "prefect-server.lock"
        self.state_path = shared / "prefect-server.json"
        self.home = shared / "prefect-server"

    def _locked(self) -> "contextlib.AbstractContextManager[None]":
        @contextlib.contextmanager
        def hold() -> Iterator[None]:
            with self.lock_path.open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)

        return hold()

    def __enter__(self) -> "LocalPrefect":
        from local.stack import LocalPrefect, free_port

        with self._locked():
            if self.state_path.exists():
                state = json.loads(self.state_path.read_text())
            else:
                database = None
                if os.environ.get("BOOKING_TEST_PREFECT_DATABASE_URL"):
                    url = os.environ["BOOKING_TEST_PREFECT_DATABASE_URL"]
                elif pg_reachable():
                    database = postgres.create_database("prefect_test", dsn=PG_DSN, prefect=True)
                    url = postgres.url(PG_DSN, database, driver="asyncpg")
                else:
                    url = None
                stack = LocalPrefect(home=self.home, port=free_port(), database_url=url)
                stack.start()
                state = {
                    "port": stack.port,
                    "database_url": url,
                    "database": database,
                    "pgid": stack.server_pids[0],
                    "users": 0,
                    "deployed": False,
                }
            state["users"] += 1
            self.state_path.write_text(json.dumps(state))
        self.stack = LocalPrefect(
            home=self.home, port=state["port"], database_url=state["database_url"]
        )
        return self.stack

    def deploy_once(self) -> None:
        """The work pool and every deployment of prefect.yaml, made by the first who asks."""
        with self._locked():
            state = json.loads(self.state_path.read_text())
            if not state["deployed"]:
                self.stack.deploy_all()
                state["deployed"] = True
                self.state_path.write_text(json.dumps(state))

    def __exit__(self, *_exc: object) -> None:
        with self._locked():
            state = json.loads(self.state_path.read_text())
            state["users"] -= 1
            self.state_path.write_text(json.dumps(state))
            if state["users"] > 0:
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(state["pgid"], signal.SIGTERM)
            for _ in range(100):  # up to 10 s, then it is killed
                if not _running(state["pgid"]):
                    break
                time.sleep(0.1)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(state["pgid"], signal.SIGKILL)
            if state["database"]:
                postgres.drop_database(state["database"], dsn=PG_DSN)
            self.state_path.unlink()


def kill_host(pid: int) -> None:
    """SIGKILL a process and everything it started, as losing its machine would: the worker
    of `python -m worker`, its forkserver, its launchers and its flow runs (which live in
    process groups of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGSTOP)  # none of them can react to the others' end
    for member in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member, signal.SIGKILL)


def _running(pid: int) -> bool:
    """The process exists and is not a zombie its parent has yet to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def settled_task_runs(flow_run_id: object, name_like: str | None = None) -> list[TaskRun]:
    """The task runs of a flow run once the server has them all, each in a final state.

    A flow called in the test process reports its task runs' states as events, which this
    process sends in the background and the server stores a moment later: send what is
    queued first, then read until the reads have agreed for two seconds (the server stores
    task runs in batches, at least every second, and under the full suite's load its
    recorder lags; two reads 0.2 s apart once agreed on 3 of 4 runs)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterName,
    )
    from prefect.events.worker import EventsWorker

    EventsWorker.drain_all(timeout=10)
    task_filter = TaskRunFilter(name=TaskRunFilterName(like_=name_like)) if name_like else None
    previous: list[str] = []
    agreed_since = time.monotonic()
    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                task_run_filter=task_filter,
            )
            seen = sorted(f"{r.id}:{r.state_type}" for r in runs)
            settled = runs and all(r.state and r.state.is_final() for r in runs)
            if seen != previous:
                previous, agreed_since = seen, time.monotonic()
            if settled and time.monotonic() - agreed_since >= 2.0:
                return runs
            if time.monotonic() > deadline:
                return runs
            time.sleep(0.2)


def runs_of_booking(client: SyncPrefectClient, booking_uid: str) -> list[FlowRun]:
    """Every flow run of one booking (tagged `booking:<uid>`)."""
    return client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[booking_tag(booking_uid)]))
    )


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self, *, hang_up_after_each: bool = False) -> None:
        self.messages: list[Message] = []
        self.peers: list[tuple[str, int]] = []  # the connection each message came on
        self.port = 0  # where its server listens, once started
        self.hang_up_after_each = hang_up_after_each  # as a server with idle limits may
        self.unknown: set[str] = set()  # recipients it refuses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.unknown:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.messages.append(email.message_from_bytes(envelope.content))
        self.peers.append(session.peer)
        if self.hang_up_after_each:
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return "250 OK"


@contextlib.contextmanager
def smtp_server(*, hang_up_after_each: bool = False) -> Iterator[Inbox]:
    """A real SMTP server (aiosmtpd) on a free loopback port; its inbox, with the port."""
    from aiosmtpd.controller import Controller

    from local.stack import free_port

    inbox = Inbox(hang_up_after_each=hang_up_after_each)
    inbox.port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
