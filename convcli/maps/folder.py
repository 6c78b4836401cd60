"""A folder of activation maps: names, the ``--force`` rule, parallel PNG writing and ``manifest.json``.

The output side of :mod:`convcli.maps.batch` (numpy and the core only).  An image's
folder that does not exist yet is written in a hidden staging folder and renamed
into place whole (:mod:`convcli.maps.staging`: three system calls a file, one rename
a folder); into an existing folder every file goes through
:func:`convcli.io.files.atomic_write_bytes`.  Either way a reader never sees a
half-written PNG and nothing is replaced without ``force``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
import unicodedata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from convcli.errors import OutputError
from convcli.io.files import atomic_open, atomic_write_bytes, check_writable
from convcli.maps.levels import upscale
from convcli.maps.staging import StagingConflict, staged_folder
from convcli.maps.writing import encode_png

MANIFEST = "manifest.json"
SHEET = "sheet.png"
#: Names a map folder may not take.
RESERVED = (MANIFEST, SHEET)

#: In a worker process of :class:`MapWriter`: the event that tells it to stop (set by the parent).
_stop = None
#: In a worker: a file is being written now; the parent has died (see :func:`_parent_died`).
_writing = _orphaned = False
#: Linux ``prctl`` option: the signal a process gets when its parent dies.
_PR_SET_PDEATHSIG = 1


#: The longest output name convcli makes, in UTF-8 bytes: file systems allow 255, and ``-2``... and
#: ``.png`` are added to it.
MAX_NAME_BYTES = 200


def safe_name(name: str) -> str:
    """``name`` usable as one path component on any common file system.

    Separators, NUL, control characters (newline...) and unpaired surrogates
    become ``_``; names longer than :data:`MAX_NAME_BYTES` UTF-8 bytes are
    shortened; ``""``, ``.`` and ``..`` become ``unnamed``.
    """
    name = "".join("_" if ch in "/\\" or unicodedata.category(ch) in ("Cc", "Cs") else ch for ch in str(name))
    name = name.strip()
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        name = name[:-1]
    return name if name not in ("", ".", "..") else "unnamed"


def unused_name(name: str, used: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``... whichever is not in ``used`` yet (then mark it used)."""
    candidate, n = name, 1
    while candidate in used:
        n += 1
        candidate = f"{name}-{n}"
    used.add(candidate)
    return candidate


def check_folder(out_dir: Path, subfolders: Iterable[str], files: Sequence[str], *,
                 force: bool) -> "set[str] | None":
    """Refuse an output folder that is a file or lies under one, or that holds other files without ``force``.

    A folder holding only an earlier render (:func:`earlier_render`) is
    convcli's own output and is accepted without ``force``: the set of its
    files is returned, so the new render can replace them (``None`` otherwise).
    With ``force``, or an earlier render, also refuse when one of ``files``
    (top-level) is a folder or one of ``subfolders`` is a file or a symbolic
    link (links inside the output folder are never followed), so the run cannot
    stop half-way on them or write outside the folder.  Nothing is created or
    deleted here.
    """
    if out_dir.is_symlink() and not out_dir.exists():
        raise OutputError(f"output folder '{out_dir}' is a dangling symbolic link; remove it or choose another -o")
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output folder '{out_dir}' is a file; give a folder (-o DIR)")
    if not out_dir.exists():
        parent = next(p for p in out_dir.parents if p.exists() or p.is_symlink())  # "." or "/" at the latest
        if not parent.is_dir():
            what = "a file" if parent.exists() else "a dangling symbolic link"
            raise OutputError(f"cannot create output folder '{out_dir}': '{parent}' is {what}")
        return None
    earlier = earlier_render(out_dir)
    if not force and earlier is None and any(out_dir.iterdir()):
        raise OutputError(
            f"output folder '{out_dir}' holds files that are not an earlier convcli render (not all listed in "
            f"its {MANIFEST}); use --force to replace the files convcli writes there (nothing else is deleted), "
            "or choose another folder with -o"
        )
    for name in files:
        check_writable(out_dir / name, force=True)
    for folder in subfolders:
        path = out_dir / folder
        if path.is_symlink():
            raise OutputError(f"cannot write into '{path}': it is a symbolic link; convcli writes only inside "
                              f"'{out_dir}' (remove the link)")
        if path.exists() and not path.is_dir():
            raise OutputError(f"cannot write into '{path}': it is a file, not a folder")
    return earlier


def earlier_render(out_dir: Path) -> "set[str] | None":
    """The files of an earlier render in ``out_dir``, when that is all it holds; else None.

    "All it holds": ``manifest.json`` reads as a convcli manifest and every file
    under ``out_dir`` (any depth) is listed in it, or is the manifest or
    ``sheet.png`` itself.  Folders may be empty.  Paths are relative, with ``/``.
    """
    try:
        with (out_dir / MANIFEST).open(encoding="utf-8") as handle:
            listed = {str(entry["file"]) for entry in json.load(handle)["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    listed |= {MANIFEST, SHEET}
    found = set()
    for path in out_dir.rglob("*"):
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            return None
        if path.is_file():
            found.add(path.relative_to(out_dir).as_posix())
    return found if found <= listed else None


def remove_stale(out_dir: Path, earlier: Iterable[str], written: "set[str]") -> None:
    """Delete the files of an earlier render that this one did not write, then their emptied folders."""
    folders = set()
    for name in set(earlier) - set(written):
        path = out_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            folders.add(path.parent)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if folder != out_dir and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def refuse_inputs_among_outputs(inputs: Iterable[str], out_dir: Path, folders: set[str],
                                file_names: Sequence[str]) -> None:
    """OutputError for an input path that a run writing ``folders`` × ``file_names``, ``manifest.json`` and
    ``sheet.png`` into ``out_dir`` would delete or overwrite (``-o`` its own folder with ``--force``)."""
    if not out_dir.exists():
        return
    root = out_dir.resolve()
    for name in inputs:
        if name == "stdin":
            continue
        try:
            parts = Path(name).resolve().relative_to(root).parts
        except (ValueError, OSError):
            continue
        if parts in ((MANIFEST,), (SHEET,)) or (len(parts) == 2 and parts[0] in folders and parts[1] in file_names):
            raise OutputError(
                f"input '{name}' is a file this run would replace in '{out_dir}'; copy it elsewhere "
                "first or choose another folder with -o"
            )


@contextlib.contextmanager
def locked_folder(out_dir: Path) -> Iterator[None]:
    """Create ``out_dir`` if needed and hold an exclusive lock on it while the block runs.

    The lock is ``fcntl.flock`` on the folder itself (no lock file is left
    behind).  A second render into the same folder fails at once with
    OutputError instead of mixing its maps with this one's.  The lock goes
    with the process, even when it is killed.  Without ``fcntl`` (Windows),
    no lock is taken.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(out_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise OutputError(f"cannot create output folder '{out_dir}': {exc.strerror or exc}") from exc
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            fcntl = None
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise OutputError(
                    f"output folder '{out_dir}' is being written by another convcli render; wait for it to end "
                    "or choose another folder with -o"
                ) from None
        yield
    finally:
        os.close(handle)  # releases the lock


def remove_old_results(out_dir: Path, names: Iterable[str]) -> None:
    """Delete ``out_dir/name`` for each of ``names`` (files or links; missing ones are fine).

    ``--force`` renders call this for ``manifest.json`` and ``sheet.png`` before
    writing the first map, so that a run that stops half-way never leaves a
    manifest describing maps it has overwritten.
    """
    for name in names:
        path = out_dir / name
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot remove the old '{path}': {exc.strerror or exc}") from exc


def write_images(out_dir: Path, file_names: Sequence[str], size: int | None, force: bool, folders, maps) -> None:
    """Write map ``maps[k][i]`` (uint8) as ``out_dir/folders[i]/file_names[k]``, upscaled to ``size``.

    A new folder is staged and appears whole (:func:`_write_staged`); an
    existing one gets its files one by one, each atomically.  In a
    :class:`MapWriter` worker, stops after the current image once the parent
    asks it to, and exits after the current file when the parent has died.
    """
    global _writing
    for i, folder in enumerate(folders):
        if _stop is not None and _stop.is_set():
            return
        if _write_staged(out_dir, folder, file_names, size, [stack[i] for stack in maps]):
            continue
        target = make_subfolder(out_dir, folder)
        for stack, name in zip(maps, file_names):
            _writing = True
            try:
                atomic_write_bytes(target / name, encode_png(upscale(stack[i], size)), force=force)
            finally:
                _writing = False
            if _orphaned:
                os._exit(1)


def _write_staged(out_dir: Path, folder: str, file_names: Sequence[str], size: int | None, pictures) -> bool:
    """Write a new folder's PNGs through :func:`~convcli.maps.staging.staged_folder`; False if it is not new.

    The whole folder counts as one file being written: a worker whose parent
    dies removes the staging folder, then exits.
    """
    global _writing
    _writing = True
    try:
        with staged_folder(out_dir, folder) as put:
            if put is None:
                return False
            for picture, name in zip(pictures, file_names):
                put(name, encode_png(upscale(picture, size)))
                if _orphaned:
                    raise _Orphaned
        return True
    except StagingConflict:  # the name was taken meanwhile: nothing was moved, write file by file
        return False
    except _Orphaned:
        os._exit(1)
    finally:
        _writing = False
        if _orphaned:
            os._exit(1)


class _Orphaned(Exception):
    """The parent died while a staged folder was being written."""


def make_subfolder(out_dir: Path, name: str) -> Path:
    """``out_dir/name``, created if missing; OutputError if it is a symbolic link or not a folder.

    Links inside the output folder are never followed: ``--force`` must not write outside it.
    """
    target = out_dir / name
    try:
        target.mkdir()
    except FileExistsError:
        pass
    except OSError as exc:
        raise OutputError(f"cannot create folder '{target}': {exc.strerror or exc}") from exc
    if target.is_symlink() or not target.is_dir():
        what = "a symbolic link" if target.is_symlink() else "not a folder"
        raise OutputError(f"cannot write into '{target}': it is {what}; convcli writes only inside '{out_dir}'")
    return target


class MapWriter:
    """Writes chunks of maps with :func:`write_images`, here or in worker processes.

    With ``workers > 0``, chunk ``c`` is encoded and written by a process pool
    while the caller computes chunk ``c + 1``; :meth:`write` waits for chunk
    ``c - 1`` first, so at most two chunks of maps are alive.  Processes, not
    threads: encoding small PNGs and the atomic writes are mostly Python code
    that holds the GIL, and threads measured slower than no threads.

    ``progress`` is called in the caller's thread with the number of images
    whose files are all written.

    Ctrl-C, SIGTERM and SIGHUP are the caller's to handle: workers ignore them
    (a terminal or ``kill -- -PGID`` sends them to the whole group) and, when
    the ``with`` block ends in an exception, stop after the image they are
    writing.  So an interrupted run stops within moments and leaves no
    half-written or temporary file.  Workers die with their parent even when
    it is killed outright (Linux ``PR_SET_PDEATHSIG``; elsewhere a thread
    watching the parent's pid): each finishes the file it is writing, then exits.
    """

    def __init__(
        self,
        out_dir: Path,
        file_names: Sequence[str],
        *,
        size: int | None = None,
        force: bool = False,
        workers: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.task = (out_dir, tuple(file_names), size, force)
        self.workers, self.progress = int(workers), progress
        self.pool = self.stop = None
        self.pending: list = []  # the previous chunk's (future, number of images)

    def __enter__(self) -> "MapWriter":
        if self.workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: workers are children of this process (fork is unsafe with threads; a forkserver's
            # children outlive a killed parent), so they can be told to die with it (_start_worker)
            context = multiprocessing.get_context("spawn")
            with _stop_signals_blocked():  # the resource tracker starts here: it must not die of a group's SIGHUP
                self.stop = context.Event()
                self.pool = ProcessPoolExecutor(
                    self.workers, mp_context=context, initializer=_start_worker, initargs=(self.stop, os.getpid())
                )
        return self

    def write(self, folders: Sequence[str], maps: Sequence[np.ndarray]) -> None:
        """Write image ``i``'s maps ``[m[i] for m in maps]`` (uint8 stacks ``(n, H', W')``) into ``folders[i]``."""
        if self.pool is None:
            write_images(*self.task, folders, maps)
            self._advance(len(folders))
            return
        step = -(-len(folders) // (2 * self.workers))  # two tasks per worker keep both busy
        futures = []
        for a in range(0, len(folders), step):
            part = [m[a : a + step] for m in maps]
            with _stop_signals_blocked():  # submit starts the workers
                future = self.pool.submit(write_images, *self.task, folders[a : a + step], part)
            futures.append((future, len(folders[a : a + step])))
        self._drain()
        self.pending = futures

    def _drain(self) -> None:
        from concurrent.futures.process import BrokenProcessPool

        for future, count in self.pending:
            try:
                future.result()
            except BrokenProcessPool:  # killed from outside (out of memory...): no traceback, say so
                raise OutputError(
                    f"a writer process for '{self.task[0]}' ended abruptly (killed, or out of memory?)"
                ) from None
            self._advance(count)
        self.pending = []

    def _advance(self, count: int) -> None:
        if self.progress is not None:
            self.progress(count)

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self._drain()
        finally:
            if self.pool is not None:
                self.stop.set()  # all is written, or a failure or Ctrl-C: stop after the current image
                self.pool.shutdown(wait=True, cancel_futures=True)


#: The signals that stop a run: the parent handles them, its helper processes ignore them.
_STOP_SIGNALS = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}


@contextlib.contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Block the stop signals in this thread while helper processes are started.

    A process started now (a writer, multiprocessing's resource tracker) begins
    with them blocked, so a signal sent to the whole process group cannot kill
    it before it has chosen to ignore them (the tracker ignores SIGINT and
    SIGTERM, and SIGHUP stays blocked in it).  This process does not miss them:
    the kernel delivers them to another thread, and Python runs the handler
    in the main thread as usual; a signal that comes anyway waits until the
    block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start_worker(stop, parent: int) -> None:
    """Initializer of :class:`MapWriter`'s processes: ignore stop signals, die with the parent (pid ``parent``)."""
    global _stop
    for number in _STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by _stop_signals_blocked
    _stop = stop
    if sys.platform.startswith("linux"):
        import ctypes

        signal.signal(signal.SIGUSR1, _parent_died)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGUSR1), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    else:
        import threading

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(0.5)
            _parent_died()

        threading.Thread(target=watch, daemon=True).start()


def _parent_died(*_) -> None:
    """The parent is gone: exit now, or after the file being written (so no temporary file is left)."""
    global _orphaned
    if not _writing:
        os._exit(1)
    _orphaned = True


def write_manifest(out_dir: Path, head: dict, files: Iterable[dict]) -> Path:
    """``out_dir/manifest.json``: the keys of ``head``, then ``"files"`` with one entry a line.

    ``files`` may be a generator: entries are written one at a time, so a
    manifest of a million files never sits in memory as one string.  An entry
    is a dict, or its ``json.dumps`` text already made.
    """
    path = out_dir / MANIFEST
    with atomic_open(path, force=True) as handle:
        handle.write(b"{\n")
        for key, value in head.items():
            handle.write(f" {json.dumps(key)}: {json.dumps(value)},\n".encode())
        handle.write(b' "files": [')
        for n, entry in enumerate(files):
            text = entry if isinstance(entry, str) else json.dumps(entry)
            handle.write(f"{',' if n else ''}\n  {text}".encode())
        handle.write(b"\n ]\n}\n")
    return path


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
