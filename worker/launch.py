"""Start one flow run: fork it from the worker host's warm forkserver, or start it plainly.

The work pool's `command` job variable runs this (`python -m worker.launch`) instead of
`python -m prefect.engine`. It imports only the standard library, because it starts once per
flow run. It hands its working directory, environment and standard streams to the forkserver
(`worker/forkserver.py`), which forks an engine that has Prefect and the flows imported
already. From then on it stands in for that engine towards the worker: it forwards the
worker's signals (cancellation) to it and exits as it exits, with its exit code, or by the
same signal if it was killed, so the worker reports a killed run as Crashed. One signal is its
own: SIGUSR1, sent by a stopping worker handing the run back (`worker/draining.py`), kills
the engine at once and exits 0, so that nothing reports the run Crashed: the worker sets it
AwaitingRetry for another worker instead.

It leaves the worker's process group, so a signal meant for the worker (Ctrl-C, a service
manager's SIGTERM to the group) does not reach the run: the worker decides what its runs get.

When no forkserver answers, or it asks for a plain start (its code or settings are out of
date), this process becomes `python -m prefect.engine` itself, as if the worker had started it.
"""

import contextlib
import json
import os
import signal
import socket
import sys
import time

# Set by `python -m worker` for the worker, which passes it on to each run.
SOCKET_ENV = "BOOKING__FORKSERVER_SOCKET"
# What the worker sends this launcher (cancelling a run) is passed on to the engine.
FORWARDED = (signal.SIGTERM,)
HAND_BACK = signal.SIGUSR1


def main() -> None:
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    # Handed back before its engine exists: there is nothing to stop (the forkserver kills
    # a child whose launcher is gone).
    signal.signal(HAND_BACK, lambda _signum, _frame: os._exit(0))
    conn = _connect(os.environ.get(SOCKET_ENV))
    if conn is None:
        _start_plainly(None)
    request = {"cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv[1:]}
    reader = conn.makefile("rb")
    try:
        socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [0, 1, 2])
        reply = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        reply = {}
    if "pid" not in reply:
        conn.close()
        _start_plainly(reply.get("fallback", "the forkserver did not answer"))
    pid = reply["pid"]

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    handed_back = False

    def hand_back(_signum: int, _frame: object) -> None:
        nonlocal handed_back
        handed_back = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.signal(HAND_BACK, hand_back)
    try:
        outcome = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        outcome = {}
    if handed_back:
        sys.exit(0)  # the worker reschedules the run; the engine is gone, as it asked
    if "signal" in outcome:
        _die_by(outcome["signal"])
    if "exit" in outcome:
        sys.exit(outcome["exit"])
    # The forkserver went away mid-run: the run is no longer ours to follow.
    _wait_gone(pid)
    sys.stderr.write(f"launch: forkserver lost while flow run process {pid} ran\n")
    sys.exit(1)


def _connect(path: str | None) -> socket.socket | None:
    if not path:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None
    return conn


def _start_plainly(reason: str | None) -> None:
    """Become `python -m prefect.engine`: same pid, environment, directory and streams."""
    if reason:
        sys.stderr.write(f"launch: starting the engine directly: {reason}\n")
        sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "prefect.engine", *sys.argv[1:]])


def _die_by(signum: int) -> None:
    """End as the engine ended: killed by `signum` (the worker sees a negative exit code)."""
    with contextlib.suppress(OSError):  # SIGKILL has no handler to reset
        signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    time.sleep(5)  # a signal that does not kill by default (none of ours) falls through
    sys.exit(128 + signum)


def _wait_gone(pid: int) -> None:
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)


if __name__ == "__main__":
    main()
