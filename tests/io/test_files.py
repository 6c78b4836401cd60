"""Atomic writes and the --force rule (convcli.io.files)."""

import os

import pytest

from convcli.errors import OutputError
from convcli.io.files import atomic_write_bytes


def test_atomic_write_refuses_overwrite_and_gives_usual_mode(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"one")
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    with pytest.raises(OutputError, match="already exists; use --force to overwrite it"):
        atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"one"
    atomic_write_bytes(target, b"two", force=True)
    assert target.read_bytes() == b"two"
    with pytest.raises(OutputError, match="output folder '.*missing' does not exist"):
        atomic_write_bytes(tmp_path / "missing" / "x.bin", b"")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]  # no temp files left behind
