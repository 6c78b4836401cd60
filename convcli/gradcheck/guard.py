"""Every live sandbox, and ending them all: on SIGTERM or SIGHUP to convcli, on Ctrl-C, on the way out.

:class:`~convcli.gradcheck.sandbox.Sandbox` registers itself here while its
child runs.  :class:`signal_guard`, entered in the main thread (the first
sandbox opened there enters one itself; a caller that starts sandboxes in
worker threads enters it around them), turns SIGTERM and SIGHUP into
:func:`terminate_all` and :class:`Terminated`: every child, its session and
its escaped daemons are killed, no new sandbox starts, and convcli exits
with status 128 + the signal, leaving no process behind.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class Terminated(SystemExit):
    """convcli got SIGTERM or SIGHUP: every sandbox was killed; exit status 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


_live: "set[Any]" = set()
#: Held while a sandbox starts its child or scans for orphans, so one never takes another's child for an orphan.
live_lock = threading.RLock()
_terminating = threading.Event()
_guard_depth = 0
_saved_handlers: dict = {}


def register(box: Any) -> None:
    with live_lock:
        _live.add(box)


def unregister(box: Any) -> None:
    with live_lock:
        _live.discard(box)


def terminating() -> bool:
    """Whether convcli is ending: new sandboxes must not start."""
    return _terminating.is_set()


def child_pids() -> "set[int]":
    """The pids of every live sandbox's child."""
    with live_lock:
        return {box.pid for box in _live if box.pid}


def kill_all() -> None:
    """Kill every live sandbox's processes now (from any thread)."""
    with live_lock:
        boxes = list(_live)
    for box in boxes:
        box.kill()


def terminate_all() -> None:
    """Kill every live sandbox and refuse to start new ones (until the next outermost :class:`signal_guard`)."""
    _terminating.set()
    kill_all()


def _on_signal(signum, frame) -> None:
    terminate_all()
    raise Terminated(signum)


class signal_guard:
    """While entered (in the main thread): SIGTERM and SIGHUP kill every sandbox and raise :class:`Terminated`.

    Re-entrant; the previous handlers come back when the outermost one exits.
    Leaving it by ``KeyboardInterrupt`` (Ctrl-C) or ``SystemExit`` also kills
    every live sandbox and stops new ones from starting.  Elsewhere than the main thread it does nothing:
    enter it in the main thread before starting sandboxes in worker threads.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGHUP)

    def __enter__(self) -> "signal_guard":
        global _guard_depth
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            if _guard_depth == 0:
                _terminating.clear()
                for signum in self.SIGNALS:
                    _saved_handlers[signum] = signal.signal(signum, _on_signal)
            _guard_depth += 1
        return self

    def __exit__(self, kind, exc, traceback) -> None:
        global _guard_depth
        if self.active and kind is not None and not issubclass(kind, Exception):  # Ctrl-C, SystemExit
            terminate_all()
        if self.active:
            _guard_depth -= 1
            if _guard_depth == 0:
                for signum, handler in _saved_handlers.items():
                    signal.signal(signum, handler)
                _saved_handlers.clear()
