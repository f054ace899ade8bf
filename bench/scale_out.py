"""Prefect's scaled-out server against the single one, in one run: a burst, two workers each.

    python -m bench.scale_out [--burst 200] [--redis redis://127.0.0.1:6379/10]

First the stack of `python -m bench.pipeline` (one Prefect server on PostgreSQL, its
background-task queue in Redis), then Prefect's scaled-out server: two API workers with
`--no-services`, the services in their own process, messaging, ordering, leases and docket
in Redis, migrated and its block types registered once before the API workers start. Each
gets a burst of --burst bookings (bundled) from two workers, measured from the first commit
until every run is final. Reported for each: CPU-seconds per booking (whole machine and by
process), bookings per minute, run states, bookings whose BOOKING_CREATED never arrived and
messages the receiver got twice (by `webhook-id`).
"""

import argparse
import tempfile
from pathlib import Path

from bench.pipeline import Bench, Scenario
from local.stack import flush_redis, scale_out_env


def burst(tmp: Path, server_env: dict[str, str], scale_out: bool, count: int) -> Scenario:
    bench = Bench(tmp, server_env=server_env, scale_out=scale_out)
    bench.start()
    try:
        bench.start_workers(2)
        bench.warm_up("bundled")
        scenario = bench.burst("bundled", count)
        scenario.name = "scaled-out server" if scale_out else "single server"
        return scenario
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/10", help="uses 2 databases")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    flush_redis(args.redis)
    host_db = args.redis.rsplit("/", 1)
    docket = f"{host_db[0]}/{int(host_db[1]) + 2}"
    flush_redis(docket, databases=1)
    single = burst(tmp / "single", {"PREFECT_SERVER_DOCKET_URL": docket}, False, args.burst)
    flush_redis(args.redis)
    scaled = burst(tmp / "scaled", scale_out_env(args.redis), True, args.burst)
    print(f"burst of {args.burst} bookings, bundled, two workers")
    print(
        f"{'server':<18} {'CPU-s/booking':>13} {'server':>7} {'worker':>7} {'postgres':>9}"
        f" {'redis':>6} {'per min':>8}  runs; undelivered; received twice"
    )
    for s in (single, scaled):
        cpu = s.cpu_per_booking()
        print(
            f"{s.name:<18} {cpu.get('machine', 0):>13.2f} {cpu.get('server', 0):>7.2f}"
            f" {cpu.get('worker', 0):>7.2f} {cpu.get('postgres', 0):>9.2f}"
            f" {cpu.get('redis', 0):>6.2f} {s.per_minute:>8.1f}  {s.states};"
            f" {s.undelivered}; {s.duplicates}"
        )
    ratio = scaled.cpu_per_booking().get("machine", 0) / single.cpu_per_booking()["machine"]
    print(f"scaled-out / single, CPU per booking: {ratio:.2f}x")


if __name__ == "__main__":
    main()
