"""convcli.maps.staging: a new folder appears whole or not at all, and nothing else is touched."""

import os

import pytest

from convcli.errors import OutputError
from convcli.maps.staging import StagingConflict, staged_folder


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_a_new_folder_appears_with_every_file(tmp_path):
    with staged_folder(tmp_path, "img-0") as put:
        for k in range(25):
            put(f"map{k}.png", bytes([k]) * (k + 1))
        assert not (tmp_path / "img-0").exists()  # nothing under the name until the block ends
    assert sorted(os.listdir(tmp_path / "img-0")) == sorted(f"map{k}.png" for k in range(25))
    assert (tmp_path / "img-0" / "map7.png").read_bytes() == bytes([7]) * 8
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("what", ["folder", "file", "link", "dangling link"])
def test_an_existing_name_is_left_to_the_file_by_file_path(tmp_path, what):
    target = tmp_path / "img-0"
    if what == "folder":
        target.mkdir()
    elif what == "file":
        target.write_bytes(b"mine")
    else:
        (tmp_path / "elsewhere").mkdir()
        target.symlink_to(tmp_path / ("elsewhere" if what == "link" else "missing"))
    with staged_folder(tmp_path, "img-0") as put:
        assert put is None
    assert leftovers(tmp_path) == []
    if what == "file":
        assert target.read_bytes() == b"mine"


def test_an_interrupt_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with staged_folder(tmp_path, "img-0") as put:
            put("a.png", b"1")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_a_name_taken_meanwhile_is_not_touched(tmp_path):
    with pytest.raises(StagingConflict):
        with staged_folder(tmp_path, "img-0") as put:
            put("a.png", b"new")
            (tmp_path / "img-0").mkdir()
            (tmp_path / "img-0" / "a.png").write_bytes(b"theirs")
    assert (tmp_path / "img-0" / "a.png").read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_a_write_error_names_the_final_path_and_cleans_up(tmp_path):
    with pytest.raises(OutputError, match=r"cannot write '.*img-0/a\.png': File exists"):
        with staged_folder(tmp_path, "img-0") as put:
            put("a.png", b"1")
            put("a.png", b"2")  # O_EXCL: never overwrites, even in staging
    assert os.listdir(tmp_path) == []
