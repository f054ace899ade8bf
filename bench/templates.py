"""How long checking and rendering a template takes, whatever it holds, at the size limit.

    python -m bench.templates [--repeat 20]

Each shape fills MAX_TEMPLATE_CHARS (16 KiB), then checked (`check_template`, what a
save runs) and rendered over a booking-like context (`render`, what a delivery runs), each
--repeat times. The target is 50 ms for either; the shapes include those that made the
earlier regular-expression checker backtrack for minutes (an unclosed `{{` followed by
blanks, thousands of unclosed `{{`).
"""

import argparse
import contextlib
import statistics
import time

from booking.templates import MAX_TEMPLATE_CHARS, InvalidTemplate, check_template, render

TARGET_MS = 50.0
CONTEXT = {
    "uid": "b-1",
    "title": "Intro call",
    "organizer": {"name": "Host", "timeZone": "Europe/Paris"},
    "attendees": [{"name": f"Guest {n}", "email": f"g{n}@example.test"} for n in range(3)],
    "confirmed": True,
}


def cut(piece: str, tail: str = "") -> str:
    """`piece` repeated whole as often as fits in the size limit with `tail` after it."""
    return piece * ((MAX_TEMPLATE_CHARS - len(tail)) // len(piece)) + tail


SHAPES = {
    "{{ then blanks to the limit": "{{" + " " * (MAX_TEMPLATE_CHARS - 2),
    "unclosed {{ repeated": cut("{{"),
    "{{# and 100 blanks, repeated": cut("{{#" + " " * 100),
    "blanks, then {{x": cut(" ", "{{x"),
    "tabs and newlines, then {{": cut("\t \n", "{{"),
    "{{{ repeated": cut("{{{"),
    "blanks inside closed tags": cut("{{" + " " * 60 + "title" + " " * 60 + "}}"),
    "a tag every 8 characters": cut("{{uid}} "),
    "sections over attendees": cut("{{#attendees}}{{name}} <{{email}}>, {{/attendees}}"),
    "standalone lines": cut("\n  {{#confirmed}}  \n{{title}}\n  {{/confirmed}}\n"),
    "}} runs": cut("}"),
    "plain text": cut("Booking confirmed. "),
}


def timed(fn, template: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with contextlib.suppress(InvalidTemplate):
            fn(template)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"{'shape (16 KiB)':<32} {'check p50':>10} {'check max':>10} {'render p50':>11} "
          f"{'render max':>11}  verdict")  # fmt: skip
    worst = 0.0
    for name, template in SHAPES.items():
        checks = timed(check_template, template, args.repeat)
        renders = timed(lambda t: render(t, CONTEXT), template, args.repeat)
        try:
            check_template(template)
            verdict = "accepted"
        except InvalidTemplate as exc:
            verdict = f"refused: {str(exc)[:40]}"
        worst = max(worst, *checks, *renders)
        print(
            f"{name:<32} {statistics.median(checks):>8.2f}ms {max(checks):>8.2f}ms "
            f"{statistics.median(renders):>9.2f}ms {max(renders):>9.2f}ms  {verdict}"
        )
    met = "met" if worst <= TARGET_MS else "NOT met"
    print(f"slowest single check or render: {worst:.2f} ms (target ≤ {TARGET_MS:.0f} ms: {met})")


if __name__ == "__main__":
    main()
