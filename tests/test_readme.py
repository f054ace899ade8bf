import re

from booking.settings import PROJECT_ROOT, Settings


def test_readme_configuration_table_lists_every_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `(BOOKING_[A-Z_]+)` \|", readme, flags=re.MULTILINE))

    expected = {f"BOOKING_{name.upper()}" for name in Settings.model_fields}

    assert documented == expected


def test_readme_opens_with_the_two_commands() -> None:
    top = (PROJECT_ROOT / "README.md").read_text().splitlines()[:8]

    assert any(line.startswith("make run") for line in top)
    assert any(line.startswith("make test") for line in top)
