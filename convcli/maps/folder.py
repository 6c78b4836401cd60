"""A folder of activation maps: names, the ``--force`` rule, parallel PNG writing and ``manifest.json``.

The output side of :mod:`convcli.maps.batch` (numpy and the core only).  Every file
goes through :func:`convcli.io.files.atomic_write_bytes`, so a reader never sees a
half-written PNG and nothing is replaced without ``force``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from convcli.errors import OutputError
from convcli.io.files import atomic_open, atomic_write_bytes, check_writable
from convcli.maps.levels import upscale
from convcli.maps.writing import encode_png

MANIFEST = "manifest.json"
SHEET = "sheet.png"

#: In a worker process of :class:`MapWriter`: the event that tells it to stop (set by the parent).
_stop = None


def safe_name(name: str) -> str:
    """``name`` usable as one path component (separators and NUL become ``_``)."""
    name = str(name).replace("/", "_").replace("\\", "_").replace("\0", "_").strip()
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
    (top-level) is a folder or one of ``subfolders`` is a file, so the run
    cannot stop half-way on them.  Nothing is created or deleted here.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"output folder '{out_dir}' is a file; give a folder (-o DIR)")
    if not out_dir.exists():
        parent = next(p for p in out_dir.parents if p.exists())  # "." or "/" at the latest
        if not parent.is_dir():
            raise OutputError(f"cannot create output folder '{out_dir}': '{parent}' is a file")
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


def write_images(out_dir: Path, file_names: Sequence[str], size: int | None, force: bool, folders, maps) -> None:
    """Write map ``maps[k][i]`` (uint8) as ``out_dir/folders[i]/file_names[k]``, upscaled to ``size``.

    In a :class:`MapWriter` worker, stops after the current image once the parent asks it to.
    """
    for i, folder in enumerate(folders):
        if _stop is not None and _stop.is_set():
            return
        target = out_dir / folder
        target.mkdir(exist_ok=True)
        for stack, name in zip(maps, file_names):
            atomic_write_bytes(target / name, encode_png(upscale(stack[i], size)), force=force)


class MapWriter:
    """Writes chunks of maps with :func:`write_images`, here or in worker processes.

    With ``workers > 0``, chunk ``c`` is encoded and written by a process pool
    while the caller computes chunk ``c + 1``; :meth:`write` waits for chunk
    ``c - 1`` first, so at most two chunks of maps are alive.  Processes, not
    threads: encoding small PNGs and the atomic writes are mostly Python code
    that holds the GIL, and threads measured slower than no threads.

    ``progress`` is called in the caller's thread with the number of images
    whose files are all written.

    Ctrl-C is the caller's to handle: workers ignore SIGINT (a terminal sends
    it to them too) and, when the ``with`` block ends in an exception, stop
    after the image they are writing.  So an interrupted run stops within
    moments and leaves no half-written or temporary file.
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

            # forkserver: workers start from a clean, preloaded process (fork is unsafe with threads)
            if "forkserver" in multiprocessing.get_all_start_methods():
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
            else:
                context = multiprocessing.get_context("spawn")
            self.stop = context.Event()
            self.pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start_worker, initargs=(self.stop,)
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
            futures.append(
                (self.pool.submit(write_images, *self.task, folders[a : a + step], part), len(folders[a : a + step]))
            )
        self._drain()
        self.pending = futures

    def _drain(self) -> None:
        for future, count in self.pending:
            future.result()
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


def _start_worker(stop) -> None:
    """Initializer of :class:`MapWriter`'s processes."""
    global _stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _stop = stop


def write_manifest(out_dir: Path, head: dict, files: Iterable[dict]) -> Path:
    """``out_dir/manifest.json``: the keys of ``head``, then ``"files"`` with one entry a line.

    ``files`` may be a generator: entries are written one at a time, so a
    manifest of a million files never sits in memory as one string.
    """
    path = out_dir / MANIFEST
    with atomic_open(path, force=True) as handle:
        handle.write(b"{\n")
        for key, value in head.items():
            handle.write(f" {json.dumps(key)}: {json.dumps(value)},\n".encode())
        handle.write(b' "files": [')
        for n, entry in enumerate(files):
            handle.write(f"{',' if n else ''}\n  {json.dumps(entry)}".encode())
        handle.write(b"\n ]\n}\n")
    return path


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
