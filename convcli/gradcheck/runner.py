"""Running :mod:`convcli.gradcheck._worker` in a child process, with a timeout per function.

The two sides talk in JSON lines:

- the parent starts :func:`convcli.gradcheck._worker.main` in a fresh Python and
  writes one job on its stdin: the file, the settings, the random inputs of
  each function and which functions to check;
- the child answers on its stdout ``ready`` (Python and numpy are up), then
  ``loaded`` (the lab functions the file defines) or ``load_error``, then
  ``start`` and ``result`` per function, then ``done``.  A bug in convcli
  itself arrives as ``internal_error`` and is raised here.

A thread reads the child's lines into a queue, so every wait can time out.  A
function that outlives the timeout gets its process killed; one that ends the
process (``os._exit``, a segmentation fault) is seen as the end of the stream.
Either way that function's checks fail and :func:`convcli.gradcheck.impl.check_impl`
starts a fresh child for the functions still pending.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from convcli.errors import ImplementationError
from convcli.gradcheck.lab import CheckSettings, failed_checks


class LabWorker:
    """One child process running :func:`convcli.gradcheck._worker.main` on a job.

    Its stdout carries JSON lines (read by a thread, so waits can time out).
    Its stderr holds what the user's code prints: another thread passes the
    first :attr:`OUTPUT_LINES` lines on to our stderr, as a log, and counts the
    rest, so that a ``print`` in a forward pass that the gradient check calls
    thousands of times does not flood a CI log.
    """

    #: How long the child may take to start Python and import numpy before it reads the user's file.
    STARTUP_SECONDS = 300.0
    #: How many lines of the user's own output (prints, warnings) one child passes on, and how long each may be.
    OUTPUT_LINES, OUTPUT_WIDTH = 50, 500

    def __init__(self, path: Path, functions: "list[str]", inputs: dict, settings: CheckSettings) -> None:
        self.path, self.settings = path, settings
        self.job = {
            "path": str(path.resolve()),
            "functions": functions,
            "inputs": {f: {k: v.tolist() for k, v in inputs[f].items()} for f in functions},
            "settings": asdict(settings),
        }
        self.events: "queue.Queue[dict | None]" = queue.Queue()
        #: How many numbers each function's inputs hold (a full gradient check perturbs each one twice).
        self.input_sizes = {f: sum(array.size for array in inputs[f].values()) for f in functions}

    def __enter__(self) -> "LabWorker":
        # The child must run this very convcli: from a source checkout its folder may
        # not be on the child's path, so add it (only then: for an installed package
        # it is site-packages, which must not move ahead of the standard library).
        package_parent = str(Path(__file__).resolve().parents[2])
        code = (
            f"import sys; p = {package_parent!r}; p in sys.path or sys.path.insert(0, p); "
            "from convcli.gradcheck._worker import main; main()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",  # the user's output may be any bytes
            start_new_session=os.name == "posix",  # its own process group, so kill() also ends what it started
        )
        self.hidden_lines = 0
        self.readers = [threading.Thread(target=target, daemon=True) for target in (self._read, self._relay)]
        for reader in self.readers:
            reader.start()
        try:
            self.process.stdin.write(json.dumps(self.job))
            self.process.stdin.close()
        except OSError:  # the child died before reading its job; the next wait will say so
            pass
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()
        self.process.wait()
        for reader, stream in zip(self.readers, (self.process.stdout, self.process.stderr)):
            reader.join(timeout=1.0)
            if not reader.is_alive():
                stream.close()
        if self.hidden_lines:
            print(f"[{self.hidden_lines:,} more lines of output from {self.path.name} not shown]", file=sys.stderr)

    def kill(self) -> None:
        """End the child and anything it started (its process group on POSIX)."""
        if os.name == "posix":
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):  # already gone
                pass
        elif self.process.poll() is None:
            self.process.kill()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.events.put(json.loads(line))
            except json.JSONDecodeError:  # not ours; the protocol stream is private, so this is a bug
                self.events.put({"event": "internal_error", "traceback": f"unreadable line from worker: {line!r}"})
        self.events.put(None)

    def _relay(self) -> None:
        shown = 0
        for line in self.process.stderr:
            if shown == self.OUTPUT_LINES:
                self.hidden_lines += 1
                continue
            shown += 1
            if len(line) > self.OUTPUT_WIDTH:
                line = line[: self.OUTPUT_WIDTH - 4] + "...\n"
            sys.stderr.write(line)

    def _next(self, seconds: float) -> "dict | None":
        """The next event; ``{"event": "timeout"}`` after ``seconds``, ``{"event": "exit"}`` at the child's end."""
        try:
            event = self.events.get(timeout=min(seconds, threading.TIMEOUT_MAX))  # a longer wait overflows
        except queue.Empty:
            return {"event": "timeout"}
        if event is None:
            self.process.wait()
            return {"event": "exit", "returncode": self.process.returncode}
        if event.get("event") == "internal_error":
            raise RuntimeError(f"convcli's gradcheck worker failed:\n{event.get('traceback')}")
        return event

    def load(self) -> "list[str]":
        """Wait for the child to load the file; the lab functions it defines."""
        event = self._next(self.STARTUP_SECONDS)
        if event["event"] == "ready":
            event = self._next(self.settings.timeout)
        if event["event"] == "loaded":
            return list(event["functions"])
        name = self.path.name
        if event["event"] == "load_error":
            raise ImplementationError(f"cannot load '{self.path}': {event['message']}")
        if event["event"] == "timeout":
            raise ImplementationError(
                f"cannot load '{self.path}': running {name} did not finish within {self.settings.timeout:g} s"
                " (does its top level loop forever?)"
            )
        raise ImplementationError(f"cannot load '{self.path}': running {name} ended the process ({ending(event)})")

    def results(self, functions: "list[str]"):
        """Yield ``(function, result event)`` as the child finishes each function.

        A function that outlives the timeout or ends the process yields a
        result event with failed records, and the iteration stops: the caller
        starts a fresh child for the functions still pending.
        """
        current, started = None, time.monotonic()
        while True:
            event = self._next(self.settings.timeout)
            kind = event["event"]
            if kind == "start":
                current, started = event["function"], time.monotonic()
            elif kind == "result":
                yield event["function"], event
                current = None
            elif kind == "done":
                return
            else:
                function = current or next(iter(functions), None)
                if function is None:
                    return
                elapsed = time.monotonic() - started
                if kind == "timeout":
                    self.kill()
                    message = f"{function} did not finish within {self.settings.timeout:g} s (its process was stopped)"
                    message += self._forward_calls(function)
                else:
                    message = f"the process ended while checking {function} ({ending(event)})"
                records = failed_checks(function, message, crashed=True, seconds=elapsed)
                yield function, {"records": [r.to_dict() for r in records]}
                return

    def _forward_calls(self, function: str) -> str:
        """Why a backward pass's full check may be slow: it calls the forward pass twice per input number."""
        if not function.endswith("backward") or self.settings.mode != "full":
            return ""
        forward = function.replace("backward", "forward")
        calls = 1 + 2 * self.input_sizes[function]
        return f"; if {forward} is slow: the check in --mode full calls it {calls:,} times, --mode fast far fewer"


def ending(event: dict) -> str:
    """``"killed by signal SIGSEGV"`` or ``"exit status 3"``."""
    code = event.get("returncode")
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"
