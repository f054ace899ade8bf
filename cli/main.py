"""`booking`: the operators' command line. Every command reads the same `BOOKING_*` settings
as the rest of the pipeline (the database, and PREFECT_API_URL for replays).

Exit codes: 0 done, 1 the command failed (e.g. the Prefect API is unreachable), 2 bad input
(an unknown id, an invalid option). Secrets are printed only when created or rotated.
"""

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from sqlmodel import Session

# Typer 0.29 (pinned) carries its own copy of click: its usage errors are these classes.
from typer._click.exceptions import ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

if TYPE_CHECKING:
    from booking.models import OutboxEvent
    from cli.admin import MessageLog

from booking.db import configured_engine, upgrade_schema


class OneLineErrors(TyperGroup):
    """Bad input to any command (a missing option, an id that is not a number, a file that
    does not exist) is one line on stderr, `error: ...`, and exit code 2, like the errors
    the commands raise themselves, instead of a box with the usage in it."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            done = super().main(*args, standalone_mode=False, **kwargs)
        except NoArgsIsHelpError as exc:  # no arguments: the help
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except ClickException as exc:
            if not standalone_mode:
                raise
            where = f" (see {exc.ctx.command_path} --help)" if getattr(exc, "ctx", None) else ""
            typer.echo(f"error: {' '.join(exc.format_message().split())}{where}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            if not standalone_mode:
                raise
            typer.echo("error: aborted", err=True)
            sys.exit(1)
        if not standalone_mode:
            return done
        sys.exit(done if isinstance(done, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
    help=__doc__.split("\n\n")[0].removeprefix("`booking`: "),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="The bookings database.", no_args_is_help=True)
subs_app = typer.Typer(help="Webhook subscriptions.", no_args_is_help=True)
retention_app = typer.Typer(help="Deleting old history.", no_args_is_help=True)
deliveries_app = typer.Typer(help="The webhook delivery log.", no_args_is_help=True)
outbox_app = typer.Typer(help="Post-commit work of committed bookings.", no_args_is_help=True)
bookings_app = typer.Typer(
    help="A booking's life, as support sees it and moves it (through the same functions, "
    "outbox and hand-off as the booking code).",
    no_args_is_help=True,
)
SETUP_NOTE = "A booking product owns this; the command exists for the demo and a first try-out."
users_app = typer.Typer(help=f"Hosts. {SETUP_NOTE}", no_args_is_help=True)
types_app = typer.Typer(help=f"Event types. {SETUP_NOTE}", no_args_is_help=True)
devices_app = typer.Typer(help=f"Hosts' push devices. {SETUP_NOTE}", no_args_is_help=True)
for name, sub in (
    ("db", db_app),
    ("subscriptions", subs_app),
    ("retention", retention_app),
    ("deliveries", deliveries_app),
    ("outbox", outbox_app),
    ("bookings", bookings_app),
    ("users", users_app),
    ("event-types", types_app),
    ("devices", devices_app),
):
    app.add_typer(sub, name=name)


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def session() -> Iterator[Session]:
    from cli.admin import AdminError

    with Session(configured_engine(), expire_on_commit=False) as db:
        try:
            yield db
        except AdminError as exc:
            fail(str(exc))


# -- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the bookings database to the newest schema (safe to run on every deploy)."""
    upgrade_schema(configured_engine())
    typer.echo("bookings database is at the newest schema")


# -- setup ------------------------------------------------------------------------------------


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Option(help="Display name.")],
    email: Annotated[str, typer.Option(help="Email address (unique).")],
    username: Annotated[str | None, typer.Option(help="Booking page name (unique).")] = None,
    time_zone: Annotated[str, typer.Option(help="IANA zone, e.g. Europe/Berlin.")] = "UTC",
    locale: Annotated[str, typer.Option(help="Language of messages, e.g. de.")] = "en",
) -> None:
    """Add a host. Prints its id."""
    from cli.admin import add_user

    with session() as db:
        user = add_user(
            db, name=name, email=email, username=username, time_zone=time_zone, locale=locale
        )
        typer.echo(f"user {user.id}")


@types_app.command("add")
def event_types_add(
    owner: Annotated[int, typer.Option(help="Id of the host who owns it.")],
    slug: Annotated[str, typer.Option(help="URL name, e.g. intro.")],
    title: Annotated[str, typer.Option(help="What the booker sees.")],
    length: Annotated[int, typer.Option(help="Minutes.")] = 30,
    requires_confirmation: Annotated[bool, typer.Option(help="Host confirms each.")] = False,
    location: Annotated[str | None, typer.Option(help="Default location.")] = None,
) -> None:
    """Add an event type. Prints its id."""
    from cli.admin import add_event_type

    with session() as db:
        event_type = add_event_type(
            db,
            owner_id=owner,
            slug=slug,
            title=title,
            length_minutes=length,
            requires_confirmation=requires_confirmation,
            location=location,
        )
        typer.echo(f"event type {event_type.id}")


@devices_app.command("add")
def devices_add(
    user: Annotated[int, typer.Option(help="Id of the host.")],
    token: Annotated[str, typer.Option(help="The device's push token.")],
) -> None:
    """Register a host's device for push notifications."""
    from cli.admin import add_device

    with session() as db:
        typer.echo(f"device {add_device(db, user_id=user, token=token).id}")


# -- subscriptions ----------------------------------------------------------------------------


@subs_app.command("add")
def subscriptions_add(
    url: Annotated[str, typer.Option(help="Subscriber URL (http or https).")],
    triggers: Annotated[
        list[str],
        typer.Option(
            "--trigger",
            "--triggers",
            help="Triggers, e.g. BOOKING_CREATED; repeat or comma-separate.",
        ),
    ],
    user: Annotated[int | None, typer.Option(help="Scope: a host's bookings.")] = None,
    event_type: Annotated[int | None, typer.Option(help="Scope: one event type.")] = None,
    team: Annotated[int | None, typer.Option(help="Scope: a team's bookings.")] = None,
    template: Annotated[
        Path | None, typer.Option(help="Mustache payload template file.", exists=True)
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="At most this many messages a second (over it they wait)."),
    ] = None,
) -> None:
    """Subscribe a URL to triggers at one scope. Prints its id and its new whsec_ secret,
    once: keep the secret, subscribers verify signatures with it."""
    from cli.admin import add_subscription

    with session() as db:
        subscription, secret, warning = add_subscription(
            db,
            url=url,
            triggers=triggers,
            user_id=user,
            event_type_id=event_type,
            team_id=team,
            template=template.read_text() if template else None,
            rate=rate,
        )
        if warning:
            typer.echo(f"warning: {warning}", err=True)
        typer.echo(f"subscription {subscription.id}")
        typer.echo(f"secret {secret}")


@subs_app.command("update")
def subscriptions_update(
    subscription: Annotated[int, typer.Argument(help="Its id.")],
    rate: Annotated[
        float,
        typer.Option(help="At most this many messages a second (over it they wait); 0: none."),
    ],
) -> None:
    """Change a subscription's rate, followed from its next delivery on every worker."""
    from cli.admin import update_subscription

    with session() as db:
        updated = update_subscription(db, subscription, rate=rate)
        limit = f"{updated.rate_per_second:g}/s" if updated.rate_per_second else "no rate limit"
        typer.echo(f"subscription {subscription}: {limit}")


@subs_app.command("list")
def subscriptions_list() -> None:
    """Every subscription: id, state, scope, triggers and host (never its secret)."""
    from cli.admin import signing_keys, subscriptions
    from tasks.delivery.message import url_host

    with session() as db:
        for sub in subscriptions(db):
            scope = (
                f"event-type {sub.event_type_id}"
                if sub.event_type_id
                else f"user {sub.user_id}"
                if sub.user_id
                else f"team {sub.team_id}"
            )
            state = "active" if sub.active else f"inactive ({sub.deactivated_reason})"
            triggers = ",".join(sub.triggers)
            count, oldest = signing_keys(sub)
            keys = f"{count} key" + ("s" if count != 1 else "")
            if oldest:
                keys += f", oldest expires {oldest:%Y-%m-%d %H:%M} UTC"
            if sub.rate_per_second:
                keys += f"\t{sub.rate_per_second:g}/s"
            typer.echo(
                f"{sub.id}\t{state}\t{scope}\t{url_host(sub.subscriber_url)}\t{triggers}\t{keys}"
            )


@subs_app.command("disable")
def subscriptions_disable(subscription: Annotated[int, typer.Argument(help="Its id.")]) -> None:
    """Stop deliveries to a subscription (messages are not queued while disabled)."""
    from cli.admin import set_active

    with session() as db:
        set_active(db, subscription, active=False)
        typer.echo(f"subscription {subscription} disabled")


@subs_app.command("enable")
def subscriptions_enable(subscription: Annotated[int, typer.Argument(help="Its id.")]) -> None:
    """Deliver to a subscription again (also one deactivated after 410 or days of failures)."""
    from cli.admin import set_active

    with session() as db:
        set_active(db, subscription, active=True)
        typer.echo(f"subscription {subscription} enabled")


@subs_app.command("stats")
def subscriptions_stats(
    subscription: Annotated[int | None, typer.Argument(help="Its id (default: every one).")] = None,
    since: Annotated[
        str, typer.Option(help="From this time (ISO 8601, UTC) or this long ago (24h, 7d).")
    ] = "24h",
) -> None:
    """Per subscription: messages, first-try and final success, p50/p95 response time,
    messages waiting for redelivery, and the last failure, from the delivery log."""
    from booking.timeutil import utcnow
    from cli.admin import AdminError, parse_since
    from tasks.delivery.health import subscription_health

    try:
        start = parse_since(since, utcnow())
    except AdminError as exc:
        fail(str(exc))
    with session() as db:
        found = subscription_health(db, start, subscription)
    if subscription is not None and not found:
        fail(f"no subscription with id {subscription}")
    for health in found:
        row = health.row()
        typer.echo(
            f"{health.subscription_id}\t{health.host}\t{health.messages} messages\t"
            f"first try {row['first try ok']}\tdelivered {row['delivered']}\t"
            f"p50 {row['p50']}\tp95 {row['p95']}\t{health.waiting} waiting\t"
            f"last failure {row['last failure']}"
        )


@subs_app.command("rotate-secret")
def subscriptions_rotate_secret(
    subscription: Annotated[int, typer.Argument(help="Its id.")],
    expire_previous_after: Annotated[
        str,
        typer.Option(
            help="How long messages are still signed with the previous secret too, e.g. "
            "24h, 90m, 7d. 0: only the new secret signs from now on; every earlier key, "
            "including those kept by an earlier rotation, stops at once (for a leaked secret)."
        ),
    ] = "24h",
) -> None:
    """Give a subscription a new whsec_ secret, used from its next delivery. Prints it once.
    Until the previous one expires, each message carries a signature for both (at most five
    keys), so the subscriber can deploy the new secret without failing a message."""
    from cli.admin import AdminError, parse_duration, rotate_secret

    with session() as db:
        try:
            overlap = parse_duration(expire_previous_after)
        except AdminError as exc:
            fail(str(exc))
        typer.echo(f"secret {rotate_secret(db, subscription, overlap)}")


# -- deliveries -------------------------------------------------------------------------------


@deliveries_app.command("list")
def deliveries_list(
    booking: Annotated[str | None, typer.Option(help="A booking's uid.")] = None,
    subscription: Annotated[int | None, typer.Option(help="A subscription's id.")] = None,
    failed: Annotated[bool, typer.Option(help="Only messages not delivered.")] = False,
    since: Annotated[
        str | None,
        typer.Option(help="Attempts from this time (ISO 8601, UTC) or this long ago (1h, 30m)."),
    ] = None,
) -> None:
    """One line per message: webhook-id, trigger, booking, subscription, attempts, last
    status (or error) and time of the last attempt. Newest first."""
    from booking.timeutil import utcnow
    from cli.admin import AdminError, deliveries, parse_since

    try:
        start = parse_since(since, utcnow()) if since is not None else None
    except AdminError as exc:
        fail(str(exc))
    with session() as db:
        for log in deliveries(
            db, booking_uid=booking, subscription_id=subscription, failed=failed, since=start
        ):
            typer.echo(_message_line(log, with_booking=True))


def _message_line(log: "MessageLog", *, with_booking: bool) -> str:
    """One webhook message of the delivery log: id, trigger, (booking,) subscription,
    attempts, last status or error, time of the last attempt."""
    last = str(log.last_status) if log.last_status else (log.last_error or "-")[:60]
    booking = f"{log.booking_uid}\t" if with_booking else ""
    return (
        f"{log.webhook_id}\t{log.trigger}\t{booking}subscription {log.subscription_id}\t"
        f"{log.attempts} attempt(s)\t{last}\t{log.last_at:%Y-%m-%d %H:%M:%S}"
    )


@deliveries_app.command("recover")
def deliveries_recover(
    subscription: Annotated[int, typer.Option(help="The subscription's id.")],
    since: Annotated[
        datetime, typer.Option(help="From this time (ISO 8601, UTC), at most 14 days back.")
    ],
    until: Annotated[datetime | None, typer.Option(help="Up to this time (default: now).")] = None,
) -> None:
    """After a subscriber's outage: send again every message to it that ended FAILED in the
    window, each with its original webhook-id and body, one booking's in commit order. Runs
    as one Prefect run (prints its UI link) ending with a table of what it sent; a message
    already delivered is not sent again."""
    from cli.replay import ReplayError, start_recovery

    with session() as db:
        try:
            run = start_recovery(db, subscription, since, until)
        except ReplayError as exc:
            fail(str(exc))
        except Exception as exc:  # the Prefect API unreachable, the deployment missing
            fail(f"{type(exc).__name__}: {exc}"[:300], code=1)
    typer.echo(f"flow run {run.name}: {run.url}")


# -- retention --------------------------------------------------------------------------------


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="Only count what would be deleted.")] = False,
) -> None:
    """Delete old final flow runs (with task runs, logs, artifacts) and old finished delivery
    and due-work rows now, as the daily `retention` deployment does; prints the counts."""
    from flows.retention import retention

    state = retention(dry_run=dry_run, return_state=True)
    if not state.is_completed():
        fail(f"retention did not complete: {state.message}", code=1)
    verb = "would delete" if dry_run else "deleted"
    for what, count in state.result().items():
        typer.echo(f"{verb}\t{count}\t{what}")


# -- replay -----------------------------------------------------------------------------------


@app.command()
def replay(
    booking: Annotated[str | None, typer.Option(help="A booking's uid.")] = None,
    concern: Annotated[
        str, typer.Option(help="all, webhooks, integrations or scheduling.")
    ] = "all",
    message: Annotated[str | None, typer.Option(help="A webhook-id (msg_...).")] = None,
    event: Annotated[
        str | None,
        typer.Option(help="With --booking: one of its outbox events (default: the latest)."),
    ] = None,
) -> None:
    """Replay a booking's post-commit work as a new deployment run (prints its UI link; what
    was done is not done twice), or send one webhook message again with its webhook-id."""
    if (booking is None) == (message is None):
        fail("give --booking UID or --message WEBHOOK_ID")
    if event is not None and booking is None:
        fail("--event goes with --booking")
    from cli.replay import ReplayError, replay_booking
    from flows.replay_message import replay_message
    from tasks.delivery.resend import MessageNotFound, find_message

    with session() as db:
        try:
            if booking is not None:
                run = replay_booking(db, booking, concern, event)
                typer.echo(f"flow run {run.name}: {run.url}")
                return
            find_message(db, message)  # an unknown id is bad input, not a failed run
            found = replay_message(message, return_state=True)
        except (ReplayError, MessageNotFound) as exc:
            fail(str(exc))
        except Exception as exc:  # the Prefect API unreachable, a deployment missing
            fail(f"{type(exc).__name__}: {exc}"[:300], code=1)
    if found.is_failed():
        cause = found.result(raise_on_failure=False)
        fail(str(cause) if isinstance(cause, MessageNotFound) else f"not sent: {found.message}", 1)
    report = found.result()
    status = f", HTTP {report.status_code}" if report.status_code else ""
    typer.echo(f"message {message}: {report.outcome}{status}")


# -- bookings ---------------------------------------------------------------------------------


@bookings_app.command("show")
def bookings_show(uid: Annotated[str, typer.Argument(help="The booking's uid.")]) -> None:
    """Status, then each event in commit order with how its post-commit work ended, then each
    webhook message with its attempts. No attendee's name, email or answers."""
    from cli.admin import booking_history

    with session() as db:
        history = booking_history(db, uid)
    booking = history.booking
    typer.echo(
        f"booking {booking.uid}\t{booking.status.value}\t{booking.start_time:%Y-%m-%d %H:%M} UTC"
        f"\tevent type {booking.event_type_id}"
        + (f"\tcancelled by {booking.cancelled_by}" if booking.cancelled_by else "")
    )
    typer.echo("events:")
    for event in history.events:
        state = _event_state(event)
        if event.finished_at is not None:
            state += f" {event.finished_at:%H:%M:%S}"
        runs = ", ".join(f"{name} {run}" for name, run in sorted(event.flow_run_ids.items()))
        typer.echo(
            f"  {event.created_at:%Y-%m-%d %H:%M:%S}\t{_event_kind(event)}\t{state}\t{event.id}"
            + (f"\truns: {runs}" if runs else "")
        )
    typer.echo("deliveries:" if history.deliveries else "deliveries: none")
    for log in history.deliveries:
        typer.echo(f"  {_message_line(log, with_booking=False)}")


def _move(move: Callable[..., Any], uid: str, **options: Any) -> None:
    """One move of a booking's life, as the booking code makes it: the function commits the
    change and its outbox event, and a dispatcher hands the event off (the relay does, if
    Prefect cannot be reached now)."""
    from booking.errors import BookingError
    from booking.settings import get_settings
    from handoff.dispatch import PostCommitDispatcher

    engine = configured_engine()
    with (
        Session(engine, expire_on_commit=False) as db,
        PostCommitDispatcher(engine=engine, settings=get_settings()) as dispatcher,
    ):
        try:
            result = move(uid, session=db, handoff=dispatcher, **options)
        except BookingError as exc:
            fail(str(exc))
        dispatcher.drain()
    typer.echo(f"booking {result.uid}: {result.status.value} ({result.event.value.lower()})")
    if result.event_id is None:  # a payment recorded before
        typer.echo("nothing new: this payment was recorded already")
        return
    from booking.models import OutboxEvent

    with session() as db:
        dispatched = db.get_one(OutboxEvent, result.event_id).dispatched_at is not None
    typer.echo(
        f"event {result.event_id}: "
        + (
            "its post-commit run was created"
            if dispatched
            else "Prefect not reached now; the outbox relay starts its post-commit run"
        )
    )


@bookings_app.command("confirm")
def bookings_confirm(uid: Annotated[str, typer.Argument(help="The booking's uid.")]) -> None:
    """The host accepts a PENDING booking."""
    from booking.transitions import confirm_booking

    _move(confirm_booking, uid)


@bookings_app.command("reject")
def bookings_reject(
    uid: Annotated[str, typer.Argument(help="The booking's uid.")],
    reason: Annotated[str | None, typer.Option(help="Shown to the booker.")] = None,
) -> None:
    """The host declines a PENDING booking."""
    from booking.transitions import reject_booking

    _move(reject_booking, uid, reason=reason)


@bookings_app.command("cancel")
def bookings_cancel(
    uid: Annotated[str, typer.Argument(help="The booking's uid.")],
    reason: Annotated[str | None, typer.Option(help="Shown to the attendees.")] = None,
    by: Annotated[str, typer.Option(help="host, attendee or system.")] = "host",
) -> None:
    """Cancel a PENDING or ACCEPTED booking; its reminders and triggers are cancelled by its
    post-commit run."""
    from booking.transitions import cancel_booking

    _move(cancel_booking, uid, reason=reason, cancelled_by=by)


@bookings_app.command("record-payment")
def bookings_record_payment(
    uid: Annotated[str, typer.Argument(help="The booking's uid.")],
    payment_id: Annotated[str, typer.Option(help="The payment provider's id.")],
) -> None:
    """Record the payment of a PENDING booking of a paid event type (once per payment id)."""
    from booking.transitions import record_payment

    _move(record_payment, uid, payment_id=payment_id)


# -- outbox -----------------------------------------------------------------------------------


@outbox_app.command("status")
def outbox_status() -> None:
    """Counts of pending (runs not yet created), running and not completed events, and the
    oldest pending one."""
    from cli.admin import outbox_status as status

    with session() as db:
        counts = status(db)
    typer.echo(f"pending\t{counts.pending}")
    typer.echo(f"running\t{counts.running}")
    typer.echo(f"not completed\t{counts.not_completed}")
    oldest = f"{counts.oldest_pending:%Y-%m-%d %H:%M:%S}" if counts.oldest_pending else "-"
    typer.echo(f"oldest pending\t{oldest}")


@outbox_app.command("list")
def outbox_list(
    pending: Annotated[
        bool, typer.Option("--pending/--unfinished", help="Only undispatched events.")
    ] = False,
) -> None:
    """Events whose post-commit work is not known done (or only the pending ones): event id,
    booking uid, what happened to the booking (created, confirmed, ...), created, dispatch
    attempts, outcome or last error."""
    from cli.admin import outbox_events

    with session() as db:
        for event in outbox_events(db, pending_only=pending):
            error = f"\t{event.last_error[:80]}" if event.last_error else ""
            typer.echo(
                f"{event.id}\t{event.booking_uid}\t{_event_kind(event)}\t"
                f"{event.created_at:%Y-%m-%d %H:%M:%S}\t"
                f"{event.dispatch_attempts} dispatch(es)\t{_event_state(event)}{error}"
            )


def _event_kind(event: "OutboxEvent") -> str:
    """What the event did to its booking: created, confirmed, rejected, cancelled, paid."""
    return str(event.payload.get("event", "CREATED")).lower()


def _event_state(event: "OutboxEvent") -> str:
    """How the event's post-commit work stands: its outcome, or running, or pending."""
    return event.outcome or ("running" if event.dispatched_at else "pending")


def main() -> None:
    # An operator's command prints its own lines: the flows it runs in this process (retention,
    # a message's replay) keep their INFO lines for the UI, and print only warnings and errors.
    # Set here, for the installed command, not at import: a process that imports this module
    # keeps its own logging.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    app()


if __name__ == "__main__":
    main()
