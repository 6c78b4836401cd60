"""A new folder of files that appears whole: written in a hidden staging folder, then renamed into place.

``filters render`` writes 25 small PNGs per input image.  Writing each through
a temporary name and a rename (:func:`convcli.io.files.atomic_write_bytes`)
costs a check, a create, a write, a close and a rename per file, all by path.
When the image's folder does not exist yet -- every fresh render -- the same
guarantees hold for the whole folder at once:

- the files are created in ``.<folder>.<random>.tmp`` next to it, by
  ``openat`` relative to that folder (create, write, close: three system calls
  a file, no path lookups);
- one ``rename`` then moves the complete folder to its name, so a reader sees
  either no folder or every file of it, each complete;
- on any failure or interrupt (Ctrl-C, a stop request) the staging folder is
  removed, and nothing under the folder's name was touched.

When the folder already exists (``--force`` over an earlier render) or the
rename finds something there, each file is written atomically one by one, as
before -- replacing only the files this run writes.  Symbolic links are never
followed: a link in the folder's place makes the rename fail and the
per-file path refuse it (``make_subfolder``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterator

from convcli.errors import OutputError

#: Prefix and suffix of staging folders (hidden; ``*.tmp`` like the temporary files of atomic writes).
PREFIX, SUFFIX = ".", ".tmp"
_STAGING_NAME = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


def is_staging(name: str) -> bool:
    """Whether ``name`` is a staging folder's (``.<folder>.<8 hex digits>.tmp``): one a killed render left behind."""
    return bool(_STAGING_NAME.match(name))
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


@contextlib.contextmanager
def staged_folder(out_dir: Path, name: str) -> Iterator["Callable[[str, bytes], None] | None"]:
    """Write files into the new folder ``out_dir/name``, which appears complete at the end of the block.

    Yields ``put(file_name, data)``, or None when ``out_dir/name`` already
    exists (or is a link, a file...): then the caller writes file by file.
    A ``put`` whose rename at the end finds the name taken raises
    :class:`StagingConflict`; the staged files are gone by then, so the
    caller can write them again file by file.

    Raises
    ------
    OutputError
        When the staging folder cannot be created or written (naming
        ``out_dir/name``, never the staging name).
    """
    target = out_dir / name
    if os.path.lexists(target):
        yield None
        return
    staging = out_dir / f"{PREFIX}{name}.{os.urandom(4).hex()}{SUFFIX}"
    try:
        os.mkdir(staging)
    except OSError as exc:
        raise OutputError(f"cannot create folder '{target}': {exc.strerror or exc}") from exc
    try:
        folder_fd = os.open(staging, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            yield lambda file_name, data: _write_at(folder_fd, file_name, data, target)
        finally:
            os.close(folder_fd)
        try:
            os.rename(staging, target)
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                raise StagingConflict(target) from exc
            raise OutputError(f"cannot create folder '{target}': {exc.strerror or exc}") from exc
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class StagingConflict(Exception):
    """The staged folder's name was taken while it was written (nothing was moved)."""


def _write_at(folder_fd: int, file_name: str, data: bytes, target: Path) -> None:
    """Create ``file_name`` in the folder open as ``folder_fd`` and write all of ``data``."""
    try:
        fd = os.open(file_name, _FLAGS, 0o666, dir_fd=folder_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write '{target / file_name}': {exc.strerror or exc}") from exc
