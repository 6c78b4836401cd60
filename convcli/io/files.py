"""Writing files safely: atomically, and never over something without ``force``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO, Iterator

from convcli.errors import OutputError


def check_writable(path: str | os.PathLike, *, force: bool = False) -> Path:
    """Refuse an output path that cannot or must not be written.

    Raises :class:`OutputError` when the folder does not exist, when ``path`` is
    a folder, or when the file (or a symbolic link, even a dangling one) exists
    and ``force`` is false.  Call this before
    any work starts, so a doomed run fails early.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"output folder '{folder}' does not exist; create it first")
    if path.is_dir():
        raise OutputError(f"output '{path}' is a folder; give a file name")
    if path.is_symlink() and not force:  # even a dangling one: the link is the user's
        raise OutputError(f"output '{path}' is a symbolic link; use --force to replace the link (not its target)")
    if path.exists() and not force:
        raise OutputError(f"output '{path}' already exists; use --force to overwrite it")
    return path


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, *, force: bool = False) -> Iterator[BinaryIO]:
    """Open a binary file for writing that appears at ``path`` only when the block succeeds.

    The data goes to a temporary file in the same folder, which ``os.replace``
    moves over ``path`` at the end of the ``with`` block; on an exception
    (Ctrl-C included) the temporary file is removed and ``path`` (if it
    existed) is untouched.  Use it to stream a large file without holding it
    in memory.  ``os.replace`` replaces a symbolic link at ``path`` itself,
    never the file it points to.

    Raises
    ------
    OutputError
        As :func:`check_writable`, and for any failure to create, write or
        move the file (full disk, read-only folder...), naming ``path``, never
        the temporary file.
    """
    path = check_writable(path, force=force)
    tmp = path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp"  # (the secrets module costs 8 ms to import)
    try:  # the name is known before the file exists, so an interrupt right after creating it still cleans up
        with open(tmp, "xb") as handle:  # O_EXCL; mode 0666 less the umask, as for any new file
            yield handle
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write '{path}': {exc.strerror or exc}") from exc
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    with atomic_open(path, force=force) as handle:
        handle.write(data)
    return Path(path)
