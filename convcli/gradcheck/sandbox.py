"""Running a program (the gradcheck worker) as a contained child process, and talking to it.

::

    with Sandbox([sys.executable, "-I", "worker.py"], Limits(memory=2 * GiB, cpu_seconds=60)) as child:
        child.send({"type": "job", ...}, timeout=5)
        deadline = time.monotonic() + 10
        message = child.receive(deadline=deadline)   # Timeout, ChildExited or ProtocolError otherwise

What the child gets (see :mod:`._contain`, which applies it before ``execv``):

- **environment**: ``PATH``, ``LANG``, ``HOME`` and ``TMPDIR`` (fresh folders
  of its own), and 1 for the BLAS/OpenMP thread counts (:data:`THREAD_CAPS`);
  nothing else of the parent's;
- **folder**: a fresh temporary working folder (``home``, ``tmp`` and the
  working folder ``work`` inside one root), removed when the sandbox closes;
  where the kernel has Landlock, it may write files nowhere else;
- **limits** (:class:`convcli.gradcheck.limits.Limits`): ``RLIMIT_AS`` (:attr:`Limits.memory`, default 4 GiB),
  ``RLIMIT_CPU`` (:attr:`Limits.cpu_seconds`: tie it to the timeout),
  ``RLIMIT_FSIZE``, no core files, and at most :attr:`Limits.processes` more
  processes (``RLIMIT_NPROC``; as root, whom Linux exempts from it, a ``pids``
  cgroup when one can be made);
- **processes**: a new session; when the sandbox closes (normally, on
  timeout, on an exception, on Ctrl-C), its process group, its session,
  whatever left them (``setsid`` daemons, adopted by us as a child subreaper)
  and their descendants are killed, and the kernel kills the child if this
  process dies.  :func:`signal_guard` (entered by the first sandbox opened in
  the main thread) turns SIGTERM and SIGHUP into killing every live sandbox,
  then :class:`Terminated`, so a ``kill`` of convcli leaves no process behind;
- **the protocol**: one pipe each way, fd 3 (parent to child) and fd 4 (child
  to parent), carrying one JSON object per line, at most
  :attr:`Limits.message_bytes` bytes each.  Anything else (a line too long,
  not UTF-8, not JSON, not an object, a repeated key) is a
  :class:`ProtocolError`: never a pass.  NaN and infinities are accepted as in
  Python's ``json``;
- **its output**: stdout and stderr share one pipe, read in bounded chunks by
  a thread into :class:`convcli.gradcheck.sanitize.BoundedLines` (at most
  :attr:`Limits.output_lines` lines of :attr:`Limits.output_width`
  characters, cleaned, prefixed ``student | ``).

Every wait is measured on this process's own monotonic clock: :meth:`Sandbox.receive`
takes a ``deadline`` (or a ``timeout`` from now) and raises :class:`Timeout` once it
passes, whatever the child sends meanwhile; received messages wait in a short queue,
so a child that floods the pipe is slowed down, never buffered without bound.  How
many times to restart a child is the caller's choice; each :class:`Sandbox` is one child.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from convcli.gradcheck import _procs, guard
from convcli.gradcheck.guard import Terminated, kill_all, signal_guard, terminate_all  # noqa: F401  (part of the API)
from convcli.gradcheck.limits import Limits
from convcli.gradcheck.sanitize import PREFIX, BoundedLines

LAUNCHER = Path(__file__).with_name("_contain.py")
THREAD_CAPS = {name: "1" for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
_EOF = object()


class SandboxError(Exception):
    """The child did not answer as the protocol says: the caller fails the check it was on."""


class Timeout(SandboxError):
    """The deadline passed (by the parent's clock) before a message came."""


class ProtocolError(SandboxError):
    """A message that breaks the protocol: too long, not UTF-8, not a JSON object."""


class ChildExited(SandboxError):
    """The child ended (or closed its end of the protocol) before sending a message."""

    def __init__(self, returncode: "int | None") -> None:
        self.returncode = returncode
        super().__init__(f"the process ended ({describe_exit(returncode)})")


def describe_exit(returncode: "int | None") -> str:
    """``"killed by signal SIGXCPU"``, ``"exit status 3"`` or ``"still running"``."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


# ----------------------------------------------------------------------------- one child


class Sandbox:
    """One contained child process running ``argv`` (see the module docstring).

    ``argv[0]`` is the program (usually ``sys.executable``); paths in ``argv``
    must be absolute, since the child starts in a folder of its own.

    ``on_output`` gets each kept line of the child's output as it comes
    (already cleaned and prefixed), e.g. to show it in a log.
    """

    #: Seconds the launcher may take to start Python and apply the limits.
    STARTUP_SECONDS = 60.0
    #: How many received messages may wait before the reader stops taking more from the pipe.
    QUEUE = 8

    def __init__(
        self, argv: "list[str]", limits: Limits = Limits(), *, on_output: "Callable[[str], None] | None" = None
    ) -> None:
        self.argv, self.limits = [str(a) for a in argv], limits
        self.output = BoundedLines(limits.output_lines, limits.output_width, on_output)
        self.containment: "dict[str, Any]" = {}
        self.pid: "int | None" = None
        self.process: "subprocess.Popen | None" = None
        self._messages: "queue.Queue[Any]" = queue.Queue(self.QUEUE)
        self._closed = False

    # ------------------------------------------------------------------ start and end

    def __enter__(self) -> "Sandbox":
        self._guard = signal_guard().__enter__()  # the outermost one (in the main thread) starts a new run
        try:
            if guard.terminating():
                raise Terminated(signal.SIGTERM)
            self._start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def _start(self) -> None:
        _procs.become_subreaper()
        self.root = Path(tempfile.mkdtemp(prefix="convcli-sandbox-"))
        self.workdir, home, tmp = (self.root / name for name in ("work", "home", "tmp"))
        for folder in (self.workdir, home, tmp):
            folder.mkdir()
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": os.environ.get("LANG", "C.UTF-8")}
        env.update(HOME=str(home), TMPDIR=str(tmp), **THREAD_CAPS)
        to_child_r, self._to_child = _pipe()
        self._from_child, to_parent_w = _pipe()
        config = {
            "parent": os.getpid(),
            "fds": [to_child_r, to_parent_w],
            "root": str(self.root),
            "landlock": self.limits.landlock,
            **{key: getattr(self.limits, key) for key in ("memory", "cpu_seconds", "file_size", "processes")},
        }
        try:
            with guard.live_lock:  # registered before another sandbox's clean-up scans for orphans
                if guard.terminating():  # checked again under the lock that kill_all takes: no child slips past it
                    raise Terminated(signal.SIGTERM)
                self.process = subprocess.Popen(
                    [sys.executable, "-I", str(LAUNCHER), json.dumps(config), *self.argv],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=self.workdir,
                    env=env,
                    pass_fds=(to_child_r, to_parent_w),
                    start_new_session=True,
                )
                self.pid = self.process.pid
                guard.register(self)
        finally:
            os.close(to_child_r)
            os.close(to_parent_w)
        os.set_blocking(self._to_child, False)
        self._threads = [
            threading.Thread(target=self._read_output, name=f"sandbox-{self.pid}-output", daemon=True),
            threading.Thread(target=self._read_messages, name=f"sandbox-{self.pid}-protocol", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        try:
            hello = self.receive(timeout=self.STARTUP_SECONDS)
        except SandboxError as exc:
            self._threads[0].join(timeout=1.0)  # what the launcher said on its way out
            said = "; ".join(line.removeprefix(PREFIX) for line in self.output.kept[-3:])
            raise SandboxError(f"the contained process did not start: {exc}" + (f": {said}" if said else "")) from None
        if hello.get("type") != "sandbox":
            raise ProtocolError(f"the contained process did not start: it sent {str(hello)[:200]}")
        self.containment = hello

    def __exit__(self, kind, exc, traceback) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.process is not None:
                self.kill()
                self.process.wait()
                for thread in self._threads:
                    thread.join(timeout=5.0)
                guard.unregister(self)
                for fd in (self._to_child, self._from_child):
                    _close(fd)
            if getattr(self, "root", None) is not None:
                _remove_tree(self.root)
        finally:
            self._guard.__exit__(kind, exc, traceback)

    def kill(self) -> None:
        """Kill the child, everything it started and any daemon that escaped (idempotent)."""
        if self.pid is None:
            return
        with guard.live_lock:
            keep = {pid for pid in guard.child_pids() if pid != self.pid}
            _procs.end_session(self.pid, cgroup=self.containment.get("cgroup"), keep=keep)

    @property
    def returncode(self) -> "int | None":
        return None if self.process is None else self.process.poll()

    # ------------------------------------------------------------------ the protocol

    def send(self, message: "dict[str, Any]", *, timeout: float) -> None:
        """Write one message (a JSON object, no NaN) to fd 3; :class:`Timeout` if the child does not take it in time."""
        data = memoryview((json.dumps(message, allow_nan=False, separators=(",", ":")) + "\n").encode())
        deadline = time.monotonic() + timeout
        while data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"the child took no input for {timeout:g} s")
            _, writable, _ = select.select([], [self._to_child], [], left)
            if not writable:
                continue
            try:
                data = data[os.write(self._to_child, data[: 1 << 16]) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise ChildExited(self._wait_briefly()) from None

    def receive(self, timeout: "float | None" = None, *, deadline: "float | None" = None) -> "dict[str, Any]":
        """The next message from the child, by ``deadline`` (``time.monotonic()``) or within ``timeout`` seconds.

        Raises :class:`Timeout` when that passes, :class:`ChildExited` when the
        child has ended (or closed fd 4) with nothing more to say, and
        :class:`ProtocolError` for a message that breaks the protocol.
        """
        if timeout is not None:
            deadline = min(deadline if deadline is not None else float("inf"), time.monotonic() + timeout)
        exited_at = None
        while True:
            left = float("inf") if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise Timeout("no message before the deadline")
            try:
                item = self._messages.get(timeout=min(left, 0.05))
            except queue.Empty:
                if self.process.poll() is not None:  # a descendant may hold fd 4 open: do not wait for its end
                    exited_at = exited_at or time.monotonic()
                    if time.monotonic() - exited_at > 0.5:
                        raise ChildExited(self.process.returncode) from None
                continue
            if item is _EOF:
                self._messages.put(_EOF)  # every later call says the same
                raise ChildExited(self._wait_briefly())
            if isinstance(item, ProtocolError):
                self._messages.put(item)
                raise item
            return item

    def _wait_briefly(self) -> "int | None":
        try:
            return self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            return None

    # ------------------------------------------------------------------ reader threads

    def _read_output(self) -> None:
        fd = self.process.stdout.fileno()
        try:
            while chunk := os.read(fd, 1 << 16):
                self.output.feed(chunk)
        except OSError:
            pass
        finally:
            self.output.close()
            self.process.stdout.close()

    def _read_messages(self) -> None:
        cap, buffer = self.limits.message_bytes, bytearray()
        try:
            while chunk := os.read(self._from_child, 1 << 16):
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    if end > cap:
                        break
                    message = parse_message(bytes(buffer[:end]))
                    del buffer[: end + 1]
                    self._put(message)
                    if isinstance(message, ProtocolError):
                        return
                if len(buffer) > cap:
                    self._put(ProtocolError(f"a message longer than {cap:,} bytes"))
                    return
        except OSError:
            pass
        self._put(_EOF)

    def _put(self, item: Any) -> None:
        """Queue ``item``, waiting while the queue is full, unless the sandbox closes meanwhile."""
        while not self._closed:
            try:
                self._messages.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def parse_message(line: bytes) -> "dict[str, Any] | ProtocolError":
    """One protocol line as a dict, or the :class:`ProtocolError` saying why it is not one."""
    try:
        message = json.loads(line.decode("utf-8"), object_pairs_hook=_no_repeated_keys)
    except UnicodeDecodeError:
        return ProtocolError("a message that is not UTF-8")
    except (ValueError, RecursionError) as exc:
        return ProtocolError(f"a message that is not JSON ({str(exc)[:100]})")
    if not isinstance(message, dict):
        return ProtocolError(f"a message that is not a JSON object but {type(message).__name__}")
    return message


def _no_repeated_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("a key appears twice")
    return dict(pairs)


def _pipe() -> "tuple[int, int]":
    """A pipe whose fds are above 4 (the child's fds 3 and 4 are moved there from them) and close on exec."""
    read, write = os.pipe()
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (read, write)]
    os.close(read)
    os.close(write)
    return high[0], high[1]


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _remove_tree(root: Path) -> None:
    """Remove the sandbox folder, also what the child made unreadable or unwritable."""

    def make_writable(function, path, _exc_info) -> None:
        for folder in (os.path.dirname(path), path):
            try:
                os.chmod(folder, stat.S_IRWXU)
            except OSError:
                pass
        try:
            function(path)
        except OSError:
            pass

    shutil.rmtree(root, onerror=make_writable)
    if root.exists():
        shutil.rmtree(root, ignore_errors=True)
