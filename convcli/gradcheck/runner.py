"""The child process that runs a checked file, as the session sees it: send, receive, end.

:class:`Child` runs :mod:`convcli.gradcheck._worker` (``python -I _worker.py 3 4``)
in a :class:`~convcli.gradcheck.sandbox.Sandbox`: reduced environment, a fresh
folder, resource limits, its process group killed at the end.  The protocol
travels on fds 3 and 4, never on the child's stdout, so whatever the checked
code prints is only output: cleaned, bounded and relayed to our stderr as
``student | ...`` lines.  ``-I`` keeps the worker's folder and the
environment's paths off ``sys.path``; the worker blocks ``import convcli``.

Every wait runs on the parent's clock: :meth:`Child.receive` returns
:data:`TIMEOUT` when the time is up, :data:`ENDED` when the child is gone, and
``{"type": "garbled"}`` for a line that breaks the protocol.  This class is the
one seam between the checks and process containment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from convcli.gradcheck.limits import Limits
from convcli.gradcheck.sandbox import ChildExited, ProtocolError, Sandbox, Timeout, describe_exit

WORKER = Path(__file__).resolve().with_name("_worker.py")
TIMEOUT, ENDED = "timeout", "ended"
#: The protocol fds inside the child (the sandbox puts its pipes there).
CHILD_FDS = ("3", "4")


def _show(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Child:
    """One contained worker process.  Use as a context manager: leaving it ends everything it started."""

    def __init__(self, label: str, limits: "Limits | None" = None) -> None:
        self.label = label
        self.box = Sandbox([sys.executable, "-I", "-u", str(WORKER), *CHILD_FDS], limits or Limits(), on_output=_show)

    def __enter__(self) -> "Child":
        self.box.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self.box.__exit__(*exc_info)
        hidden = getattr(self.box.output, "dropped_lines", 0)
        if hidden:
            print(f"[{hidden:,} more lines of output from {self.label} not shown]", file=sys.stderr)

    def send(self, request: dict, seconds: float = 60.0) -> bool:
        """Write one request; False when the child does not take it."""
        try:
            self.box.send(request, timeout=seconds)
        except (Timeout, ChildExited, ProtocolError):
            return False
        return True

    def receive(self, seconds: float):
        """The next message (a dict), :data:`TIMEOUT` or :data:`ENDED`."""
        try:
            return self.box.receive(timeout=max(seconds, 0.001))
        except Timeout:
            return TIMEOUT
        except ChildExited:
            return ENDED
        except ProtocolError:
            return {"type": "garbled"}

    def ending(self) -> str:
        """``"killed by signal SIGSEGV"`` or ``"exit status 3"``."""
        return describe_exit(self.box.returncode)
