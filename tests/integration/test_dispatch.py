"""Dispatch against a real Prefect server with the deployments of prefect.yaml registered."""

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from prefect.client.orchestration import SyncPrefectClient
from sqlalchemy import Engine
from sqlmodel import Session

from booking.enums import WebhookTrigger
from booking.models import OutboxEvent
from booking.service import create_booking
from booking.settings import Settings
from booking.timeutil import utcnow
from booking.transitions import cancel_booking
from deployments.names import ARRANGEMENTS, idempotency_key
from handoff.dispatch import PostCommitDispatcher
from handoff.relay import relay_pending
from local.stack import LocalPrefect
from tests.factories import booking_request, make_event_type, make_subscription
from tests.helpers import runs_of_booking

pytestmark = pytest.mark.integration


def dispatcher_for(engine: Engine, settings: Settings, **changes: object) -> PostCommitDispatcher:
    return PostCommitDispatcher(engine=engine, settings=settings.model_copy(update=changes))


def book(engine: Engine, dispatcher: PostCommitDispatcher | None = None, **kw: object):
    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        return create_booking(
            booking_request(event_type), session=session, handoff=dispatcher, **kw
        )


def outbox_event(engine: Engine, event_id: str) -> OutboxEvent:
    with Session(engine) as session:
        event = session.get(OutboxEvent, event_id)
        assert event is not None
        return event


@pytest.mark.parametrize("mode", ["bundled", "per-concern"])
def test_one_booking_starts_the_runs_of_its_arrangement(
    deployed: LocalPrefect,
    prefect_client: SyncPrefectClient,
    engine: Engine,
    settings: Settings,
    mode: str,
) -> None:
    with dispatcher_for(
        engine, settings, prefect_api_url=deployed.api_url, dispatch_mode=mode
    ) as dispatcher:
        result = book(engine, dispatcher)
        dispatcher.drain(timeout=30)

    runs = runs_of_booking(prefect_client, result.uid)
    expected = ARRANGEMENTS[mode]
    assert len(runs) == len(expected)
    by_deployment = {prefect_client.read_deployment(r.deployment_id).name: r for r in runs}
    assert sorted(by_deployment) == sorted(d.name for d in expected)
    for target in expected:
        run = by_deployment[target.name]
        assert run.parameters == {"event_id": result.event_id, "booking_uid": result.uid}
        assert run.idempotency_key == idempotency_key(result.event_id, target)
    event = outbox_event(engine, result.event_id)
    assert event.dispatched_at is not None
    assert event.flow_run_ids == {name: str(run.id) for name, run in by_deployment.items()}


def test_dispatching_an_event_again_starts_no_new_run(
    deployed: LocalPrefect, prefect_client: SyncPrefectClient, engine: Engine, settings: Settings
) -> None:
    with dispatcher_for(
        engine, settings, prefect_api_url=deployed.api_url, dispatch_mode="per-concern"
    ) as dispatcher:
        result = book(engine, dispatcher)
        dispatcher.drain(timeout=30)
        first = runs_of_booking(prefect_client, result.uid)

        again = dispatcher.dispatch(result.event_id, timeout=30)

    assert again.dispatched
    assert sorted(again.runs.values()) == sorted(str(r.id) for r in first)
    assert len(runs_of_booking(prefect_client, result.uid)) == 3


@pytest.fixture
def silent_api() -> Iterator[str]:
    """A Prefect API address that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_unreachable_prefect_neither_blocks_booking_nor_loses_the_event(
    deployed: LocalPrefect,
    prefect_client: SyncPrefectClient,
    silent_api: str,
    engine: Engine,
    settings: Settings,
) -> None:
    with dispatcher_for(
        engine, settings, prefect_api_url=silent_api, dispatch_timeout_seconds=2.0
    ) as stalled:
        result = book(engine, stalled)
        # The booking is committed and answered while the API call is still hanging.
        assert outbox_event(engine, result.event_id).dispatch_attempts == 0
        assert result.dispatch == "handed-off"
        stalled.drain(timeout=30)

    pending = outbox_event(engine, result.event_id)
    assert pending.dispatched_at is None and pending.dispatch_attempts == 1
    assert pending.last_error and "post-commit" in pending.last_error
    assert runs_of_booking(prefect_client, result.uid) == []

    relay_settings = settings.model_copy(
        update={"prefect_api_url": deployed.api_url, "relay_grace_seconds": 0}
    )
    with PostCommitDispatcher(engine=engine, settings=relay_settings) as dispatcher:
        first = relay_pending(engine=engine, dispatcher=dispatcher, settings=relay_settings)
        second = relay_pending(engine=engine, dispatcher=dispatcher, settings=relay_settings)

    assert first.claimed >= 1 and first.failed == 0
    assert second.claimed == 0
    runs = runs_of_booking(prefect_client, result.uid)
    assert len(runs) == 1
    assert outbox_event(engine, result.event_id).flow_run_ids == {"post-commit": str(runs[0].id)}


def test_closing_with_a_dispatch_still_hanging_returns_and_keeps_the_event_pending(
    silent_api: str, engine: Engine, settings: Settings
) -> None:
    stalled = dispatcher_for(
        engine, settings, prefect_api_url=silent_api, dispatch_timeout_seconds=60.0
    )
    result = book(engine, stalled)

    stalled.close(timeout=0.5)

    event = outbox_event(engine, result.event_id)
    assert event.dispatched_at is None and event.flow_run_ids == {}


def test_the_relay_finishes_completed_runs_and_restarts_crashed_ones(
    deployed: LocalPrefect, prefect_client: SyncPrefectClient, engine: Engine, settings: Settings
) -> None:
    """No worker runs here: the runs' states are set as a worker's end (or death) would."""
    from datetime import timedelta

    from prefect.states import Completed, Crashed

    from booking.timeutil import utcnow
    from handoff.relay import finish_dispatched

    settings = settings.model_copy(
        update={"prefect_api_url": deployed.api_url, "run_max_restarts": 1}
    )
    with dispatcher_for(engine, settings) as dispatcher:
        done, crashed = book(engine, dispatcher), book(engine, dispatcher)
        dispatcher.drain(timeout=30)
    (done_run,) = runs_of_booking(prefect_client, done.uid)
    (crashed_run,) = runs_of_booking(prefect_client, crashed.uid)
    prefect_client.set_flow_run_state(done_run.id, Completed(), force=True)
    prefect_client.set_flow_run_state(crashed_run.id, Crashed(), force=True)
    later = utcnow() + timedelta(minutes=5)  # past the grace, and past each pass's lease

    first = finish_dispatched(engine=engine, client=prefect_client, settings=settings, now=later)

    assert (first.finished, first.restarted) == (1, 1)
    assert outbox_event(engine, done.event_id).outcome == "Completed"
    assert prefect_client.read_flow_run(crashed_run.id).state.name == "AwaitingRetry"
    prefect_client.set_flow_run_state(crashed_run.id, Crashed(), force=True)  # crashed again
    finish_dispatched(
        engine=engine, client=prefect_client, settings=settings, now=later + timedelta(minutes=5)
    )
    event = outbox_event(engine, crashed.event_id)
    assert (event.outcome, event.restarts) == ("Crashed", 1)  # left for an operator
    assert event.finished_at is not None


def test_a_cancellation_lost_at_commit_is_dispatched_by_the_relay_with_its_tag(
    deployed: LocalPrefect,
    prefect_client: SyncPrefectClient,
    silent_api: str,
    engine: Engine,
    settings: Settings,
) -> None:
    with dispatcher_for(engine, settings, prefect_api_url=deployed.api_url) as dispatcher:
        result = book(engine, dispatcher)
        dispatcher.drain(timeout=30)
    with (
        dispatcher_for(
            engine, settings, prefect_api_url=silent_api, dispatch_timeout_seconds=1.0
        ) as stalled,
        Session(engine) as session,
    ):
        cancelled = cancel_booking(result.uid, session=session, handoff=stalled)
        stalled.drain(timeout=30)
    assert outbox_event(engine, cancelled.event_id).dispatched_at is None

    relay_settings = settings.model_copy(
        update={"prefect_api_url": deployed.api_url, "relay_grace_seconds": 0}
    )
    with PostCommitDispatcher(engine=engine, settings=relay_settings) as dispatcher:
        relay_pending(engine=engine, dispatcher=dispatcher, settings=relay_settings)

    runs = {run.parameters["event_id"]: run for run in runs_of_booking(prefect_client, result.uid)}
    assert set(runs) == {result.event_id, cancelled.event_id}
    assert "created" in runs[result.event_id].tags
    assert "cancelled" in runs[cancelled.event_id].tags
    assert runs[cancelled.event_id].name == f"post-commit-{result.uid}"


def test_a_run_cancelled_from_the_ui_records_its_event_cancelled_at_once(
    deployed: LocalPrefect, prefect_client: SyncPrefectClient, engine: Engine, settings: Settings
) -> None:
    """Prefect calls a flow's cancellation hooks as its run enters Cancelling: the hook
    records the event Cancelled then, not "running" until the relay's next pass."""
    from prefect.states import Cancelling

    from tasks.outbox import record_run_end

    with dispatcher_for(engine, settings, prefect_api_url=deployed.api_url) as dispatcher:
        booked = book(engine, dispatcher)
        dispatcher.drain(timeout=30)
    (run,) = runs_of_booking(prefect_client, booked.uid)
    cancelling = Cancelling(message="cancelled from the UI")
    prefect_client.set_flow_run_state(run.id, cancelling, force=True)

    record_run_end(None, prefect_client.read_flow_run(run.id), cancelling)

    event = outbox_event(engine, booked.event_id)
    assert event.outcome == "Cancelled" and event.finished_at is not None


@pytest.mark.parametrize("earlier_ended", [True, False])
def test_a_message_held_as_its_earlier_event_ends_is_released_at_once(
    deployed: LocalPrefect,
    prefect_client: SyncPrefectClient,
    engine: Engine,
    settings: Settings,
    earlier_ended: bool,
) -> None:
    """The race, step by step: the CANCELLED's step saw the CREATED still running; the
    CREATED's run ended and its end hook found nothing held; then the step inserted its
    held row. Looking once more after the insert, the step starts the sweep itself."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

    from booking import outbox
    from tasks.delivery import store
    from tasks.delivery.message import Subscriber, booking_messages
    from tasks.webhooks.steps import release_if_settled_meanwhile

    with Session(engine, expire_on_commit=False) as session:
        event_type = make_event_type(session)
        sub = make_subscription(
            session, "http://127.0.0.1:9/hook", ["BOOKING_CANCELLED"], event_type_id=event_type.id
        )
        created = create_booking(booking_request(event_type), session=session)
        cancelled = cancel_booking(created.uid, session=session)
        payload = outbox.load_payload(session, cancelled.event_id)
        (message,) = booking_messages(
            payload, WebhookTrigger.BOOKING_CANCELLED, [Subscriber(sub.id, "127.0.0.1")]
        )
    if earlier_ended:
        outbox.record_finished(engine, {created.event_id: "Completed"})  # its end hook ran
    with Session(engine) as session:  # the step's insert, after both
        store.add_redelivery_once(session, message, utcnow())
        session.commit()

    started = release_if_settled_meanwhile(message)

    released = prefect_client.read_flow_runs(
        flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"release:{created.uid}"]))
    )
    assert started is earlier_ended
    assert len(released) == (1 if earlier_ended else 0)


class SwitchedApi:
    """A loopback address in front of the Prefect API that refuses every connection until
    `restore()`, then passes each connection through: an outage, and the server's return."""

    def __init__(self, api_url: str):
        upstream = api_url.removeprefix("http://").split("/", 1)[0]
        host, port = upstream.rsplit(":", 1)
        self.upstream = (host, int(port))
        self.up = threading.Event()
        self.stop = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.listener.close()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            if not self.up.is_set():
                client.close()  # down: the connection is dropped at once
                continue
            server = socket.create_connection(self.upstream)
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()


def _pipe(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def test_events_committed_during_an_outage_start_soon_after_prefect_returns(
    deployed: LocalPrefect, prefect_client: SyncPrefectClient, engine: Engine, settings: Settings
) -> None:
    """No relay pass runs here: the dispatcher itself starts what failed, once the API
    answers again (within its 20 s between looks; the promise is a minute)."""
    api = SwitchedApi(deployed.api_url)
    try:
        with dispatcher_for(
            engine, settings, prefect_api_url=api.url, dispatch_timeout_seconds=2.0
        ) as dispatcher:
            during = [book(engine, dispatcher) for _ in range(3)]
            dispatcher.drain(timeout=30)
            assert all(outbox_event(engine, r.event_id).dispatched_at is None for r in during)

            api.restore()
            deadline = time.monotonic() + 60
            while not all(outbox_event(engine, r.event_id).dispatched_at for r in during):
                assert time.monotonic() < deadline, "not started within a minute of the return"
                time.sleep(0.5)

        for result in during:
            (run,) = runs_of_booking(prefect_client, result.uid)  # one run each, no more
            assert outbox_event(engine, result.event_id).flow_run_ids == {
                "post-commit": str(run.id)
            }
    finally:
        api.close()
