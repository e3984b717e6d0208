"""CPU time of the processes a benchmark started: its fetch processes and the embedded broker.

On a machine with few cores the daemon, its fetch processes and the broker share them, so an end-to-end rate
below the client's own can be a shortage of CPU rather than waste in one process. ``benchmarks/loop_ceiling.py``
prints each one's CPU per event from these samples; their sum says how many events per second the machine's
cores could carry at best.

Linux only (``/proc``; no psutil dependency for a benchmark); elsewhere every sample is empty.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ROLES", "cpu_by_role", "descendants", "role_of", "sample"]

PROC = Path("/proc")
ROLES = ("fetch", "broker", "other")


def _children(pid: int) -> list[int]:
    """Direct children of ``pid``: the kernel lists them per thread that forked them."""
    out: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Every live process below ``pid`` (this process by default), parents before their children."""
    todo, found = [os.getpid() if pid is None else pid], []
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (all its threads), None when it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def role_of(pid: int) -> str:
    """``broker`` (the Tansu binary), ``fetch`` (a multiprocessing spawn child: the fetch processes) or
    ``other`` (multiprocessing's resource tracker, anything else)."""
    try:
        comm = (PROC / str(pid) / "comm").read_text().strip()
        cmdline = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "other"
    if comm == "tansu":
        return "broker"
    if b"spawn_main" in cmdline:
        return "fetch"
    return "other"


def sample() -> dict[int, tuple[str, float]]:
    """``{pid: (role, CPU seconds so far)}`` of this process's live descendants."""
    out: dict[int, tuple[str, float]] = {}
    for pid in descendants():
        seconds = _cpu_seconds(pid)
        if seconds is not None:
            out[pid] = (role_of(pid), seconds)
    return out


def cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each role spent between two samples, over the processes alive at both (a process started
    or ended in between has no measured span: left out rather than counted from its start). The role is the
    later sample's: a child caught between fork and exec still shows its parent's command line."""
    spent = dict.fromkeys(ROLES, 0.0)
    for pid, (role, seconds) in after.items():
        if pid in before:
            spent[role] += max(0.0, seconds - before[pid][1])
    return spent
