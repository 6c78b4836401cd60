"""A folder of activation maps: names, the ``--force`` rule, the lock and ``manifest.json``.

The output side of :mod:`convcli.maps.batch` (numpy and the core only); the PNGs
themselves are written by :mod:`convcli.maps.writer`.  Nothing is replaced
without ``force``, and a folder holding only an earlier render is convcli's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import unicodedata
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from convcli.errors import OutputError
from convcli.io.files import atomic_open, check_writable
from convcli.maps import staging

MANIFEST = "manifest.json"
SHEET = "sheet.png"
#: Names a map folder may not take.
RESERVED = (MANIFEST, SHEET)

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
    ``sheet.png`` itself.  Folders may be empty, and the staging folders a
    killed render left behind (:func:`convcli.maps.staging.is_staging`) are
    convcli's own too: :func:`remove_stale` deletes them.  Paths are
    relative, with ``/``.
    """
    try:
        with (out_dir / MANIFEST).open(encoding="utf-8") as handle:
            listed = {str(entry["file"]) for entry in json.load(handle)["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    listed |= {MANIFEST, SHEET}
    found = set()
    for path in out_dir.rglob("*"):
        if staging.is_staging(path.relative_to(out_dir).parts[0]):
            continue
        if path.is_symlink() or not (path.is_dir() or path.is_file()):
            return None
        if path.is_file():
            found.add(path.relative_to(out_dir).as_posix())
    return found if found <= listed else None


def remove_stale(out_dir: Path, earlier: Iterable[str], written: "set[str]") -> None:
    """Delete the files of an earlier render that this one did not write, then their emptied folders,
    and any staging folder a killed render left behind."""
    for path in out_dir.iterdir():
        if staging.is_staging(path.name) and path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
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


def write_manifest(out_dir: Path, head: dict, files: Iterable[dict]) -> Path:
    """``out_dir/manifest.json``: the keys of ``head``, then ``"files"`` with one entry a line.

    ``files`` may be a generator: entries are written a few thousand at a
    time (one encode and one write each), so a manifest of a million files
    never sits in memory as one string.  An entry is a dict, or its
    ``json.dumps`` text already made.
    """
    path = out_dir / MANIFEST
    with atomic_open(path, force=True) as handle:
        handle.write(b"{\n")
        for key, value in head.items():
            handle.write(f" {json.dumps(key)}: {json.dumps(value)},\n".encode())
        handle.write(b' "files": [')
        lead, batch = "\n  ", []
        for entry in files:
            batch.append(entry if isinstance(entry, str) else json.dumps(entry))
            if len(batch) == 4096:
                handle.write((lead + ",\n  ".join(batch)).encode())
                lead, batch = ",\n  ", []
        if batch:
            handle.write((lead + ",\n  ".join(batch)).encode())
        handle.write(b"\n ]\n}\n")
    return path


def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
