import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from booking.settings import PROJECT_ROOT, Settings
from tests.factories import make_event_type

README = (PROJECT_ROOT / "README.md").read_text()


def test_readme_configuration_table_lists_every_setting() -> None:
    documented = set(re.findall(r"^\| `(BOOKING_[A-Z_]+)` \|", README, flags=re.MULTILINE))

    expected = {f"BOOKING_{name.upper()}" for name in Settings.model_fields}

    assert documented == expected


def test_readme_opens_with_the_two_commands() -> None:
    top = README.splitlines()[:8]

    assert any(line.startswith("make run") for line in top)
    assert any(line.startswith("make test") for line in top)


def test_the_web_app_snippet_books_and_hands_off(configure, prefect_server, engine) -> None:
    configure(prefect_api_url=prefect_server.api_url)
    (snippet,) = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    with Session(engine) as session:
        event_type_id = make_event_type(session).id
    start = datetime.now(UTC) + timedelta(days=3)
    namespace: dict = {}

    exec(compile(snippet, "README.md", "exec"), namespace)
    try:
        result = namespace["book"](
            {
                "event_type_id": event_type_id,
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "booker": {"name": "Ada", "email": "ada@bookers.example", "time_zone": "UTC"},
            }
        )
        cancelled = namespace["cancel"](result.uid, "plans changed")
    finally:
        namespace["dispatcher"].close()

    assert result.status == "ACCEPTED" and result.dispatch == "handed-off"
    assert cancelled.status == "CANCELLED" and cancelled.dispatch == "handed-off"


def test_the_booking_command_upgrades_a_fresh_database(configure, tmp_path) -> None:
    """`booking db upgrade`, as the README's first screen has it, from the installed script."""
    assert "booking db upgrade" in "\n".join(README.splitlines()[:25])
    url = f"sqlite:///{tmp_path / 'fresh.db'}"

    result = subprocess.run(
        [str(Path(sys.executable).parent / "booking"), "db", "upgrade"],
        env={"BOOKING_DATABASE_URL": url, "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )

    assert result.stdout == "bookings database is at the newest schema\n"
    assert (tmp_path / "fresh.db").stat().st_size > 0


def test_the_first_screen_shows_adding_a_subscription_and_replaying() -> None:
    first_screen = "\n".join(README.splitlines()[:25])

    assert "booking subscriptions add" in first_screen
    assert "booking replay --booking" in first_screen


def test_the_deploying_steps_start_the_server_with_the_local_stacks_settings() -> None:
    from local.stack import SERVER_SETTINGS

    section = (PROJECT_ROOT / "README.md").read_text().split("\n## Deploying\n", 1)[1]
    start = section[: section.index("prefect server start")]
    for name, value in SERVER_SETTINGS.items():
        assert f"{name}={value}" in start, name
