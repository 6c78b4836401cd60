"""Finding and ending every process a sandboxed child started (Linux ``/proc``; a no-op elsewhere).

A child runs in its own session, so ``killpg`` ends it and whatever stayed in
its process group.  A process that called ``setsid`` (a daemon) has left that
group, and one whose parent died has been re-parented.  So while sandboxes run,
the parent is a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): an orphan is
re-parented to it rather than to init, and can be found.  :func:`end_session`
then kills, until none is left,

- every process of the child's session or process group, and their descendants;
- every process of the child's ``pids`` cgroup, when it has one (as root);
- every process re-parented to us that lives in another session than ours and
  is not one of the children we started on purpose (``keep``): one of those
  is a daemon that escaped some sandbox;

and reaps the adopted ones, so they do not linger as zombies.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import NamedTuple

PR_SET_CHILD_SUBREAPER = 36


class Proc(NamedTuple):
    ppid: int
    pgid: int
    sid: int
    state: str


def become_subreaper() -> bool:
    """Make this process adopt its orphaned descendants (Linux); whether that worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def process_table() -> "dict[int, Proc]":
    """pid -> parent, process group, session and state, for every process we can see."""
    table = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces and parentheses
        if len(fields) >= 4:
            table[int(entry)] = Proc(int(fields[1]), int(fields[2]), int(fields[3]), fields[0])
    return table


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("ascii", "replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X")


def cgroup_members(cgroup: "str | None") -> "set[int]":
    if not cgroup:
        return set()
    try:
        with open(os.path.join(cgroup, "cgroup.procs")) as handle:
            return {int(line) for line in handle if line.strip()}
    except (OSError, ValueError):
        return set()


def _targets(table: "dict[int, Proc]", session: int, cgroup: "str | None", keep: "set[int]") -> "set[int]":
    me, my_sid = os.getpid(), os.getsid(0)
    found = {pid for pid, p in table.items() if p.sid == session or p.pgid == session}
    found |= cgroup_members(cgroup)
    found |= {pid for pid, p in table.items() if p.ppid == me and p.sid != my_sid and pid not in keep}
    children: "dict[int, list[int]]" = {}
    for pid, p in table.items():
        children.setdefault(p.ppid, []).append(pid)
    stack = list(found)
    while stack:  # and their descendants
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(me)
    return {pid for pid in found if pid not in keep and table.get(pid, Proc(0, 0, 0, "Z")).state not in "ZX"}


def end_session(session: int, *, cgroup: "str | None" = None, keep: "set[int]" = frozenset(), rounds: int = 50) -> None:
    """SIGKILL every process of the child's session, group and cgroup, and every escaped orphan.

    ``session`` is the child's pid (its session and group id).  ``keep`` are
    pids never to touch (the other sandboxes' children).  Repeats until a scan
    finds nothing, since a dying process's children are re-parented meanwhile.
    """
    try:
        os.killpg(session, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    quiet = 0
    for _ in range(rounds):
        targets = _targets(process_table(), session, cgroup, set(keep) | {session})
        for pid in targets:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        reap_adopted(keep | {session})
        quiet = quiet + 1 if not targets else 0
        if quiet == 2:
            break
        time.sleep(0.01)
    if cgroup:
        for _ in range(100):
            try:
                os.rmdir(cgroup)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.01)


def reap_adopted(keep: "set[int]") -> None:
    """Collect the exit status of adopted children that have ended (never one in ``keep``)."""
    me, my_sid = os.getpid(), os.getsid(0)
    for pid, p in process_table().items():
        if p.ppid == me and p.sid != my_sid and p.state in "ZX" and pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
