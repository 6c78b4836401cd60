"""The child process that runs a checked file: starting it, talking to it, ending it.

:class:`Child` starts :mod:`convcli.gradcheck._worker` as ``python -I _worker.py
REQUEST_FD RESPONSE_FD``: two private pipes carry the JSON-line protocol
(:mod:`convcli.gradcheck.protocol`), so whatever the checked code prints on its
stdout or stderr is only output, relayed to our stderr in bounded form.  The
child runs without convcli: ``-I`` keeps the worker's folder and the
environment's paths off ``sys.path``, and the worker blocks ``import convcli``.

Every wait runs on the parent's own clock: :meth:`Child.receive` returns
:data:`TIMEOUT` when the time is up, whatever the child sends or does not send,
and :data:`ENDED` when the child's answers stop (it died).  :func:`spawn` is
the one place a process is started, so containment can change it alone.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from convcli.gradcheck.protocol import MAX_LINE

WORKER = Path(__file__).resolve().with_name("_worker.py")
TIMEOUT, ENDED = "timeout", "ended"


def spawn(argv: "list[str]", *, pass_fds: "tuple[int, ...]") -> subprocess.Popen:
    """Start the child in its own session, its output on one pipe, stdin empty."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
        start_new_session=os.name == "posix",
    )


class Child:
    """One worker process.  Use as a context manager: leaving it ends the process group."""

    #: How many lines of the checked code's own output one child passes on, and how long each may be.
    OUTPUT_LINES, OUTPUT_WIDTH = 50, 500

    def __init__(self, label: str) -> None:
        self.label = label
        self.answers: "queue.Queue" = queue.Queue()
        self.hidden_lines = 0

    def __enter__(self) -> "Child":
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        try:
            self.process = spawn(
                [sys.executable, "-I", str(WORKER), str(request_read), str(response_write)],
                pass_fds=(request_read, response_write),
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self.readers = [
            threading.Thread(target=self._read_answers, daemon=True),
            threading.Thread(target=self._relay_output, daemon=True),
        ]
        for reader in self.readers:
            reader.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.kill()
        self.process.wait()
        for fd in (self._request_write,):
            try:
                os.close(fd)
            except OSError:
                pass
        for reader in self.readers:
            reader.join(timeout=1.0)
        if self.hidden_lines:
            print(f"[{self.hidden_lines:,} more lines of output from {self.label} not shown]", file=sys.stderr)

    def kill(self) -> None:
        """End the child and everything it started (its process group)."""
        if os.name == "posix":
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        elif self.process.poll() is None:
            self.process.kill()

    def send(self, request: dict) -> bool:
        """Write one request; False when the child no longer reads."""
        data = (json.dumps(request) + "\n").encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._request_write, view)
                view = view[written:]
        except OSError:
            return False
        return True

    def receive(self, seconds: float):
        """The next message (a parsed JSON value), :data:`TIMEOUT` or :data:`ENDED`."""
        try:
            message = self.answers.get(timeout=min(max(seconds, 0.0), threading.TIMEOUT_MAX))
        except queue.Empty:
            return TIMEOUT
        if message is ENDED:
            self.answers.put(ENDED)  # every later wait sees the end too
        return message

    def ending(self) -> str:
        """``"killed by signal SIGSEGV"`` or ``"exit status 3"``, once the child is gone."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "still running"
        if code < 0:
            try:
                return f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def _read_answers(self) -> None:
        """Lines from the response pipe, in bounded chunks; a line that is too long ends the stream."""
        pending = b""
        with os.fdopen(self._response_read, "rb", buffering=0) as stream:
            while True:
                chunk = stream.read(1 << 16)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    try:
                        self.answers.put(json.loads(line))
                    except (ValueError, RecursionError):
                        self.answers.put({"type": "garbled"})
                if len(pending) > MAX_LINE:
                    self.answers.put({"type": "garbled"})
                    break
        self.answers.put(ENDED)

    def _relay_output(self) -> None:
        """The checked code's own output on our stderr: the first lines, each cut short; the rest counted."""
        shown, pending = 0, b""
        stream = self.process.stdout
        while True:
            chunk = stream.read1(1 << 14) if hasattr(stream, "read1") else stream.read(1 << 14)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > self.OUTPUT_WIDTH:
                lines.append(pending)
                pending = b""
            for line in lines:
                if shown >= self.OUTPUT_LINES:
                    self.hidden_lines += 1
                    continue
                shown += 1
                text = "".join(c if c.isprintable() else "?" for c in line.decode("utf-8", "replace"))
                if len(text) > self.OUTPUT_WIDTH:
                    text = text[: self.OUTPUT_WIDTH - 3] + "..."
                sys.stderr.write(f"student | {text}\n")
        if pending and shown < self.OUTPUT_LINES:
            sys.stderr.write(f"student | {pending[: self.OUTPUT_WIDTH].decode('utf-8', 'replace')}\n")
