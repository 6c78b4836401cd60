"""A checked file loaded in a child, and the calls made into it -- on the parent's clock, replies checked.

:class:`Session` starts a :class:`~convcli.gradcheck.runner.Child`, has it load
the convention's adapter and the file, and then runs one call at a time.  A
call's answer is a :class:`~convcli.gradcheck.protocol.Value`, a
:class:`~convcli.gradcheck.protocol.Raised`, or a :class:`Failed` (a timeout,
a dead process, a malformed or extra message): after a Failed the child is
ended, and the next call starts a fresh one, at most :data:`MAX_STARTS` times.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

from convcli.errors import ImplementationError
from convcli.gradcheck.conventions import Convention, layer_specs
from convcli.gradcheck.loading import Source
from convcli.gradcheck.protocol import Note, ProtocolError, Raised, Value, parse_answer, parse_loaded, parse_raised
from convcli.gradcheck.runner import ENDED, TIMEOUT, Child
from convcli.gradcheck.limits import Limits

#: How long a child may take to start Python, numpy and the adapter (torch can be slow) on a busy machine.
STARTUP_SECONDS = 120.0
#: Extra time the parent gives loading beyond the budget it tells the child.
GRACE_SECONDS = 5.0
MAX_STARTS = 12


@dataclass
class Failed:
    """A call that gave no answer: the message says why."""

    message: str


class LoadFailure(ImplementationError):
    """The adapter or the file could not be loaded at all."""


class Session:
    def __init__(self, source: Source, convention: Convention, timeout: float, limits: "Limits | None" = None) -> None:
        self.source, self.convention, self.timeout = source, convention, timeout
        # the CPU limit is a backstop for what the parent's clock cannot see (a forked child spinning)
        limits = limits or Limits()
        if limits.cpu_seconds is None:  # CPU time follows the timeout unless the caller chose it
            limits = dataclasses.replace(limits, cpu_seconds=min(max(60.0, 10 * timeout), 86_400.0))
        self.limits = limits
        self.child: "Child | None" = None
        self.starts = 0
        self.ids = itertools.count(1)
        self.defined: "list[str]" = []
        self.notes: "list[Note]" = []
        self.forms: "dict[str, str]" = {}
        self.last_id = 0

    def __enter__(self) -> "Session":
        self._start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._drop()

    def _drop(self) -> None:
        if self.child is not None:
            self.child.__exit__(None, None, None)
            self.child = None

    def _start(self) -> None:
        """Start a child and load the file; :class:`LoadFailure` if that goes wrong."""
        try:
            self._load()
        except BaseException:
            self._drop()
            raise

    def _load(self) -> None:
        self.starts += 1
        name = self.source.path.name
        self.child = Child(name, self.limits).__enter__()
        budget = min(self.timeout, 86_400.0)
        self.child.send({"op": "load", "adapter": str(self.convention.path), "chunks": self.source.chunks,
                         "filename": str(self.source.path), "budget": budget})
        message = self.child.receive(STARTUP_SECONDS)
        if isinstance(message, dict) and message.get("type") == "adapter":
            if self.convention.layers is None:
                self.convention.layers = layer_specs(message.get("layers"), message.get("layout"),
                                                     where=f"adapter '{self.convention.path.name}'")
                name = message.get("name")
                self.convention.name = name if isinstance(name, str) and name.isprintable() and name else \
                    self.convention.path.name
            message = self.child.receive(budget + GRACE_SECONDS)
        if isinstance(message, dict) and message.get("type") == "loaded":
            try:
                self.defined, self.notes, self.forms = parse_loaded(message)
            except ProtocolError as exc:
                self._fail(f"cannot load '{self.source.path}': its process sent a malformed message ({exc})")
            return
        self._fail(self._load_problem(message, budget))

    def _fail(self, message: str) -> None:
        self._drop()
        raise LoadFailure(message)

    def _load_problem(self, message, budget: float) -> str:
        path = self.source.path
        if message == TIMEOUT:
            return f"cannot load '{path}': running {path.name} did not finish within {budget:g} s"
        if message == ENDED:
            return f"cannot load '{path}': running {path.name} ended the process ({self.child.ending()})"
        if not (isinstance(message, dict) and message.get("type") == "load_error"):
            return f"cannot load '{path}': its process sent an unexpected message"
        stage = message.get("stage")
        try:
            raised = parse_raised({"origin": "other", "code": "", "line": None, **message.get("exception", {})})
        except (ProtocolError, TypeError):
            raised = Raised("Error", "", None, "", "other")
        what = f"{raised.type}: {raised.message}" if raised.message else raised.type
        if stage == "adapter":
            line = f", line {raised.line}" if raised.line else ""
            return f"cannot load the adapter '{self.convention.path}'{line}: {what}"
        if stage == "numpy":
            return f"cannot check '{path}': numpy cannot be imported in the child process ({what})"
        place = f" at {self.source.where(raised.line)}" if raised.line else ""
        code = f": {raised.code}" if raised.code else ""
        return f"cannot load '{path}': {raised.type}{place}: {raised.message}{code}"

    # ------------------------------------------------------------------------- calls

    def call(self, request: dict, seconds: "float | None" = None) -> "Value | Raised | Failed":
        """Send one request and wait for its answer on our clock."""
        seconds = self.timeout if seconds is None else seconds
        if self.child is None:
            if self.starts >= MAX_STARTS:
                return Failed(f"not run: the file's process was started {self.starts} times already")
            try:
                self._start()
            except LoadFailure as exc:
                return Failed(f"not run: loading the file again failed ({exc})")
        ident = self.last_id = next(self.ids)
        if not self.child.send({**request, "id": ident}):
            return self._lost(f"its process ended before the call ({self.child.ending()})")
        message = self.child.receive(seconds)
        if message == TIMEOUT:
            return self._lost(f"did not finish within {seconds:g} s (its process was stopped)")
        if message == ENDED:
            return self._lost(f"ended the process ({self.child.ending()})")
        try:
            answer = parse_answer(message, ident)
        except ProtocolError as exc:
            return self._lost(f"its process sent a malformed answer ({exc})")
        if self.child.receive(0.0) != TIMEOUT:  # a second message for one call: someone else wrote it
            return self._lost("its process sent more than one answer to one call")
        return answer

    def _lost(self, message: str) -> Failed:
        self._drop()
        return Failed(message)
