"""The main job on embedded defaults: a local Prefect server, worker and a few bookings.

    python -m local.demo [--port 4200] [--mode bundled|per-concern]

Everything lives under ./data/demo (bookings in SQLite, Prefect's own SQLite database and logs),
so a second start reuses the server's history. Ctrl-C stops the worker and the server.
"""

import argparse
import logging
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

from prefect.client.schemas.objects import TERMINAL_STATES
from sqlmodel import Session, col, select

from booking.db import make_engine, upgrade_schema
from booking.models import (
    NOTICE_KEY_PREFIX,
    EventType,
    OutboxEvent,
    ScheduledTrigger,
    User,
    WebhookSubscription,
    Workflow,
    WorkflowReminder,
    WorkflowStep,
)
from booking.service import create_booking
from booking.settings import DATA_DIR, Settings, get_settings
from booking.transitions import cancel_booking, confirm_booking
from cli import admin
from handoff.dispatch import PostCommitDispatcher
from handoff.relay import finish_dispatched, relay_pending
from local import postgres
from local.stack import LocalPrefect, LocalStackError, flush_redis, scale_out_env
from local.subscriber import DemoMailbox, DemoSubscriber

logger = logging.getLogger("booking.demo")
REDIS_URL = "redis://127.0.0.1:6379/0"
PROJECT_LOGGERS = ("booking", "cli", "deployments", "handoff", "local")
DEMO_TRIGGERS = [
    "BOOKING_CREATED",
    "BOOKING_RESCHEDULED",
    "BOOKING_REQUESTED",
    "BOOKING_CANCELLED",
    "BOOKING_REJECTED",
    "MEETING_STARTED",
    "MEETING_ENDED",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4200, help="Prefect server and UI port")
    parser.add_argument("--mode", choices=["bundled", "per-concern"], default="bundled")
    parser.add_argument("--exit", action="store_true", help="stop after the summary")
    parser.add_argument(
        "--scale-out",
        action="store_true",
        help="Prefect's scaled-out server: two API workers, its services in their own process, "
        "its database a new one on the local PostgreSQL, messaging in the local Redis",
    )
    parser.add_argument(
        "--redis", default=REDIS_URL, help=f"with --scale-out (default {REDIS_URL})"
    )
    args = parser.parse_args()
    # The project's own lines at INFO; libraries (Alembic, httpx, ...) only when they warn.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in PROJECT_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)

    # The demo subscriber listens on loopback, which webhooks refuse by default: allowed here
    # (where the demo saves its subscription) and in the worker's runs (which deliver to it).
    loopback = {"BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]'}
    os.environ.update(loopback)
    get_settings.cache_clear()
    home = DATA_DIR / "demo"
    database_url = f"sqlite:///{home / 'bookings.db'}"
    mailbox = DemoMailbox()
    smtp_port = mailbox.start()
    scaled: dict = {}
    if args.scale_out:
        try:
            flush_redis(args.redis)  # no stream of an earlier run remains
            prefect_db = postgres.prefect_database_url("prefect_demo")
        except Exception as exc:  # Redis, PostgreSQL or prefect-redis missing
            logger.error("--scale-out needs PostgreSQL and Redis on 127.0.0.1: %s", exc)
            return 1
        scaled = {"database_url": prefect_db, "api_workers": 2, "separate_services": True}
        logger.info("scaled-out Prefect server: 2 API workers, services apart, Redis messaging")
    stack = LocalPrefect(
        home=home / ("prefect-scaled" if args.scale_out else "prefect"),
        port=args.port,
        ui=True,
        **scaled,
        extra_env={
            **(scale_out_env(args.redis) if args.scale_out else {}),
            "BOOKING_DATABASE_URL": database_url,
            "BOOKING_DISPATCH_MODE": args.mode,
            **loopback,
            # Cancellation notices go to the demo mailbox.
            "BOOKING_SMTP_HOST": "127.0.0.1",
            "BOOKING_SMTP_PORT": str(smtp_port),
        },
    )
    try:
        logger.info("starting Prefect server on %s (first start takes ~20 s) ...", stack.ui_url)
        stack.start()
        logger.info("deploying prefect.yaml to work pool booking-pool ...")
        stack.deploy_all()
        stack.start_worker()
        logger.info("worker started; log at %s", stack.log_path("worker"))
        subscriber = DemoSubscriber(secret="")  # the subscription's, once seeded
        subscriber_url = subscriber.start()
        logger.info("demo subscriber listening on %s", subscriber_url)
        run_bookings(stack, database_url, args.mode, subscriber, mailbox)
        logger.info("Prefect UI: %s  (flow runs are tagged booking:<uid>)", stack.ui_url)
        if args.exit:
            return 0
        logger.info("serving until Ctrl-C")
        signal.signal(signal.SIGTERM, _interrupt)
        while True:
            time.sleep(1)
    except LocalStackError as exc:
        logger.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        logger.info("stopping worker and server ...")
        stack.stop()
        mailbox.stop()
        if args.scale_out:
            postgres.drop_database(prefect_db.rsplit("/", 1)[-1])


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_bookings(
    stack: LocalPrefect,
    database_url: str,
    mode: str,
    subscriber: DemoSubscriber,
    mailbox: DemoMailbox,
) -> None:
    engine = make_engine(database_url)
    upgrade_schema(engine)
    logger.info("bookings database %s is at the newest schema", engine.url.database)
    settings = Settings(
        database_url=database_url,
        prefect_api_url=stack.api_url,
        dispatch_mode=mode,
        relay_grace_seconds=0,
    )
    with Session(engine, expire_on_commit=False) as session:
        quick, approval = seed(session, subscriber)
        start = (datetime.now(UTC) + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            booked = create_booking(request(quick, start), session=session, handoff=dispatcher)
            pending = create_booking(request(approval, start), session=session, handoff=dispatcher)
            moved = create_booking(
                request(quick, start + timedelta(hours=3), reschedule_uid=booked.uid),
                session=session,
                handoff=dispatcher,
            )
            dispatcher.drain(timeout=30)
            # What the outbox-relay deployment does every minute, done now for the demo.
            report = relay_pending(engine=engine, dispatcher=dispatcher, settings=settings)
            if report.claimed:
                logger.info("relay re-dispatched %d events", report.dispatched)
        results = [("new", booked), ("needs confirmation", pending), ("reschedule", moved)]
        for label, result in results:
            logger.info("booked %-18s uid=%s status=%s", label, result.uid, result.status)
        wait_for_runs(stack, session, [r.event_id for _, r in results])
        # The rest of a booking's life: the host confirms the request, the booker cancels
        # the rescheduled booking.
        with PostCommitDispatcher(engine=engine, settings=settings) as dispatcher:
            confirmed = confirm_booking(pending.uid, session=session, handoff=dispatcher)
            cancelled = cancel_booking(
                moved.uid,
                session=session,
                reason="Something came up",
                cancelled_by="attendee",
                handoff=dispatcher,
            )
            dispatcher.drain(timeout=30)
        for label, result in (("confirmed", confirmed), ("cancelled", cancelled)):
            logger.info("%-9s uid=%s status=%s", label, result.uid, result.status)
        wait_for_runs(stack, session, [confirmed.event_id, cancelled.event_id])
        # What the relay's next pass records (and logs): how each booking's runs ended.
        from prefect.client.orchestration import SyncPrefectClient

        with SyncPrefectClient(stack.api_url) as client:
            finish_dispatched(engine=engine, client=client, settings=settings)
        summarise(session, subscriber, mailbox, [r for _, r in results])


def wait_for_runs(stack: LocalPrefect, session: Session, event_ids: list[str | None]) -> None:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(stack.api_url) as client:
        deadline = time.monotonic() + 180
        while True:
            states = {}
            for event_id in event_ids:
                event = session.get(OutboxEvent, event_id)
                session.refresh(event)
                for name, run_id in event.flow_run_ids.items():
                    run = client.read_flow_run(run_id)
                    states[(event.booking_uid, name, run.name)] = run.state_type
            done = states and all(s in TERMINAL_STATES for s in states.values())
            if done or time.monotonic() > deadline:
                break
            waiting = sum(s not in TERMINAL_STATES for s in states.values())
            logger.info("waiting for %d of %d flow runs ...", waiting, len(states))
            time.sleep(3)
    for (uid, deployment, run_name), state in sorted(states.items()):
        logger.info("  booking %s  %-13s %-40s %s", uid, deployment, run_name, state.value)


def seed(session: Session, subscriber: DemoSubscriber) -> tuple[EventType, EventType]:
    """The host, event types, reminder workflow and subscription of the demo, made once
    with the functions behind the `booking` command."""
    host = session.exec(select(User).where(User.email == "host@demo.example")).first()
    if host is None:
        host = admin.add_user(session, name="Dana Host", email="host@demo.example", username="dana")
        for slug, needs_ok in (("intro", False), ("consult", True)):
            admin.add_event_type(
                session,
                owner_id=host.id,  # type: ignore[arg-type]
                slug=slug,
                title=slug.title(),
                requires_confirmation=needs_ok,
                location="https://meet.demo.example/dana",
            )
        session.add(
            Workflow(
                name="Day-before reminder",
                user_id=host.id,
                trigger="BEFORE_EVENT",
                time=24,
                time_unit="HOUR",
                active_on_all=True,
            )
        )
        session.commit()
        workflow = session.exec(select(Workflow).where(Workflow.user_id == host.id)).one()
        session.add(WorkflowStep(workflow_id=workflow.id, action="EMAIL_HOST"))
        session.commit()
    # The subscriber listens on a new port each start: point the subscription at it.
    subscription = session.exec(
        select(WebhookSubscription).where(WebhookSubscription.user_id == host.id)
    ).first()
    if subscription is None:
        subscription, _secret, _warning = admin.add_subscription(
            session,
            url=subscriber.url,
            triggers=DEMO_TRIGGERS,
            user_id=host.id,
        )
    subscription.subscriber_url = subscriber.url
    subscription.triggers = DEMO_TRIGGERS
    subscription.active = True
    session.add(subscription)
    session.commit()
    subscriber.secret = subscription.secret or ""
    types = {
        e.slug: e for e in session.exec(select(EventType).where(EventType.owner_id == host.id))
    }
    return types["intro"], types["consult"]


def summarise(
    session: Session, subscriber: DemoSubscriber, mailbox: DemoMailbox, results: list
) -> None:
    logger.info("deliveries received by the demo subscriber, in the order they arrived:")
    for item in subscriber.received:
        logger.info(
            "  %-20s booking %s  webhook-id %s  signature %s",
            item.trigger,
            item.booking_uid,
            item.webhook_id,
            "verified" if item.signature_ok else "MISMATCH",
        )
    logger.info("emails received by the demo mailbox:")
    for to, subject in mailbox.received:
        logger.info("  to %-22s %s", to, subject)
    logger.info("scheduled for later (sent by deliver-due-work when due; CANCELLED when the")
    logger.info("booking was cancelled or rescheduled):")
    session.expire_all()
    for result in results:
        for reminder in session.exec(
            select(WorkflowReminder).where(
                WorkflowReminder.booking_id == result.booking_id,
                ~col(WorkflowReminder.dedupe_key).startswith(NOTICE_KEY_PREFIX),  # sent at once
            )
        ):
            logger.info(
                "  booking %s  %s reminder due %s  %s",
                result.uid,
                "mandatory" if reminder.is_mandatory else "workflow",
                reminder.due_at.isoformat(),
                reminder.status.value,
            )
        for trigger in session.exec(
            select(ScheduledTrigger).where(ScheduledTrigger.booking_id == result.booking_id)
        ):
            logger.info(
                "  booking %s  %s due %s  %s",
                result.uid,
                trigger.trigger_event.value,
                trigger.due_at.isoformat(),
                trigger.status.value,
            )


def request(event_type: EventType, start: datetime, **extra: object) -> dict:
    return {
        "event_type_id": event_type.id,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=30)).isoformat(),
        "booker": {"name": "Sam Booker", "email": "sam@demo.example", "time_zone": "Europe/Paris"},
        **extra,
    }


if __name__ == "__main__":
    sys.exit(main())
