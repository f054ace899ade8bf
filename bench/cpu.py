"""CPU seconds by process group, read from /proc (Linux): what a scenario cost each part.

A group is a set of root pids and all their descendants. A process's figure is its own user
and system time plus that of the children it has reaped, so processes that started and ended
inside the interval are counted through their parent.
"""

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    name: str
    seconds: float  # utime + stime + cutime + cstime


def _read(pid: int) -> Proc | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return Proc(pid=pid, ppid=int(fields[1]), name=name, seconds=ticks / TICKS)


def processes() -> dict[int, Proc]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (proc := _read(int(entry))) is not None:
            found[proc.pid] = proc
    return found


def tree(roots: Iterable[int], procs: dict[int, Proc]) -> set[int]:
    members = {pid for pid in roots if pid in procs}
    grew = True
    while grew:
        grew = False
        for proc in procs.values():
            if proc.ppid in members and proc.pid not in members:
                members.add(proc.pid)
                grew = True
    return members


def machine_busy_seconds() -> float:
    """Non-idle CPU time of the whole machine since boot, all cores."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICKS


Group = Callable[[dict[int, Proc]], set[int]]


def by_roots(roots: Callable[[], Iterable[int]]) -> Group:
    return lambda procs: tree(roots(), procs)


def by_name(name: str) -> Group:
    return lambda procs: {p.pid for p in procs.values() if p.name == name}


class Meter:
    """Snapshots of named groups; `since(snapshot)` gives CPU seconds per group.

    "machine" is the whole machine; "this process" is the measuring process alone (its
    threads, not its children), where the booking side runs.
    """

    def __init__(self, groups: dict[str, Group]):
        self.groups = groups

    def snapshot(self) -> dict[str, float]:
        procs = processes()
        taken = {"machine": machine_busy_seconds()}
        for name, group in self.groups.items():
            taken[name] = sum(procs[pid].seconds for pid in group(procs))
        taken["this process"] = time.process_time()
        return taken

    def since(self, before: dict[str, float]) -> dict[str, float]:
        now = self.snapshot()
        return {name: max(0.0, now[name] - before.get(name, 0.0)) for name in now}
