"""Writing a render's PNGs: each stack of maps encoded at once, each image's folder staged, on threads.

The writing side of :mod:`convcli.maps.batch` (numpy and the core only).  An
image's folder that does not exist yet is written in a hidden staging folder
and renamed into place whole (:mod:`convcli.maps.staging`: three system calls
a file, one rename a folder); into an existing folder every file goes through
:func:`convcli.io.files.atomic_write_bytes`.  Either way a reader never sees a
half-written PNG and nothing is replaced without ``force``.

Threads, not processes, share the writing: the maps of 64 images are encoded
in one numpy pass and one deflate call a picture
(:func:`convcli.maps.png.encode_stack`), and zlib, numpy and the system calls
that create files release the GIL, so two threads use two CPUs where it
counts -- creating files is kernel work, and on a busy ext4 file system it is
most of a render's time.  Threads start in microseconds where a process pool
costs a Python start-up and a numpy import per worker, and no process is ever
left behind: a Ctrl-C, SIGTERM or SIGHUP reaches the main thread, which asks
the writers to stop after the image they are writing and waits for them.
A process killed outright (SIGKILL) may leave the hidden staging folder of
the image being written (``.<folder>.<random>.tmp``), never a visible
half-written folder.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from convcli.io.files import atomic_write_bytes
from convcli.maps.folder import make_subfolder
from convcli.maps.levels import upscale_each
from convcli.maps.staging import StagingConflict, staged_folder
from convcli.maps.writing import encode_pictures

#: Images whose maps :func:`write_images` encodes at a time (between two looks at the stop request).
ENCODE_BLOCK = 64


def write_images(out_dir: Path, file_names: Sequence[str], size: int | None, force: bool, folders: Sequence[str],
                 maps: Sequence[np.ndarray], *, stop: "threading.Event | None" = None) -> None:
    """Write map ``maps[k][i]`` as ``out_dir/folders[i]/file_names[k]``, upscaled to ``size``.

    Parameters
    ----------
    maps : sequence of uint8 arrays, ``(n, H'_k, W'_k)`` or ``(n, H'_k, W'_k, 3)``
        One stack per file name; each stack is encoded :data:`ENCODE_BLOCK`
        pictures at a time (:func:`~convcli.maps.writing.encode_pictures`).
    stop : threading.Event, optional
        Looked at before each image: once set, return without writing more.
    """
    for start in range(0, len(folders), ENCODE_BLOCK):
        block = slice(start, start + ENCODE_BLOCK)
        files = [encode_pictures(upscale_each(stack[block], size)) for stack in maps]  # files[k][i]: PNG bytes
        for i, folder in enumerate(folders[block]):
            if stop is not None and stop.is_set():
                return
            write_folder(out_dir, folder, file_names, [encoded[i] for encoded in files], force=force)


def write_folder(out_dir: Path, folder: str, file_names: Sequence[str], files: Sequence[bytes], *,
                 force: bool) -> None:
    """Write ``files[k]`` as ``out_dir/folder/file_names[k]``.

    A new folder is staged and appears whole
    (:func:`~convcli.maps.staging.staged_folder`); an existing one (or one
    whose name is taken while it is staged) gets its files one by one, each
    atomically, replacing files only with ``force``.
    """
    try:
        with staged_folder(out_dir, folder) as put:
            if put is not None:
                for data, name in zip(files, file_names):
                    put(name, data)
                return
    except StagingConflict:  # the name was taken meanwhile: nothing was moved, write file by file
        pass
    target = make_subfolder(out_dir, folder)
    for data, name in zip(files, file_names):
        atomic_write_bytes(target / name, data, force=force)


class MapWriter:
    """Writes chunks of maps with :func:`write_images`, here or on writer threads.

    With ``workers > 0``, chunk ``c`` is encoded and written by that many
    threads while the caller computes chunk ``c + 1``; :meth:`write` waits for
    chunk ``c - 1`` first, so at most two chunks of maps are alive.
    ``progress`` is called in the caller's thread with the number of images
    whose files are all written.

    When the ``with`` block ends in an exception (Ctrl-C, SIGTERM, a failed
    write), the threads stop after the image each is writing and the block
    waits for them: an interrupted run stops within moments, with every
    folder either whole or absent and no temporary file.
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
        self.pool: ThreadPoolExecutor | None = None
        self.stop = threading.Event()
        self.pending: list[tuple[Future, int]] = []  # the previous chunk's (future, number of images)

    def __enter__(self) -> "MapWriter":
        if self.workers > 0:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="convcli-writer")
        return self

    def write(self, folders: Sequence[str], maps: Sequence[np.ndarray]) -> None:
        """Write image ``i``'s maps ``[m[i] for m in maps]`` (uint8 stacks ``(n, H', W')``) into ``folders[i]``."""
        if self.pool is None:
            write_images(*self.task, folders, maps, stop=self.stop)
            self._advance(len(folders))
            return
        step = -(-len(folders) // (2 * self.workers))  # two tasks per thread keep them all busy
        futures = []
        for a in range(0, len(folders), step):
            part = [m[a : a + step] for m in maps]
            futures.append((self.pool.submit(write_images, *self.task, folders[a : a + step], part, stop=self.stop),
                            len(folders[a : a + step])))
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
            self.stop.set()  # all is written, or a failure or Ctrl-C: stop after the current image
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)
