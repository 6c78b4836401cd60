"""Loading files as courses hand them in: notebooks, statements that fail, packages that are missing."""

import json
from pathlib import Path

import pytest

from convcli.errors import ImplementationError
from convcli.gradcheck.impl import FileNotChecked, check_impl
from convcli.gradcheck.loading import read_source, scan
from convcli.gradcheck.settings import CheckSettings
from helpers_impl import IMPLS, NOTEBOOKS, line_of, records, run

CORRECT_LAB = (IMPLS / "lab" / "vectorized.py").read_text()


def notebook(path: Path, *cells: str) -> Path:
    document = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# A lab\n"]}]
        + [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c.splitlines(True)}
           for c in cells],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(document))
    return path


def test_the_labs_notebook_is_checked_as_handed_out():
    result = run(str(NOTEBOOKS / "lab.ipynb"))
    checks = {r.name: r for r in result.records}
    assert result.convention == "lab"
    assert checks["dot_forward[3x3]"].status == "pass"
    assert checks["conv_forward[8x8 k3x3]"].status == "pass"
    assert checks["conv_backward[8x8 k3x3]:X"].status == "pass"
    # its known bugs: da ignored, dw not scaled by dA, 3x3 kernels only
    assert checks["dot_backward[3x3]:x"].status == checks["conv_backward[8x8 k3x3]:w"].status == "fail"
    assert "raised AssertionError at lab.ipynb, cell 5, line" in checks["conv_forward[12x10 k5x5]"].message
    notes = "\n".join(result.notes)
    assert "cell 3, line 2: from lib.checking import gradient_check -- skipped (ModuleNotFoundError: No module named 'lib')" in notes
    assert "from keras.datasets import mnist -- skipped" in notes


def test_a_notebook_with_magics_a_failing_import_and_a_download():
    result = run(str(NOTEBOOKS / "download_and_failing_import.ipynb"))
    assert {r.status for r in result.records} == {"pass"}
    notes = result.notes
    assert any(n.startswith("cell 2, line 1: import h5py -- skipped (ModuleNotFoundError") for n in notes)
    assert any(n.startswith("cell 2, line 2: from lib.checking import gradient_check -- skipped") for n in notes)
    assert any(n.startswith("cell 3, line 2: urllib.request.urlretrieve(") for n in notes)
    assert any(n.startswith("cell 3, line 3: train = h5py.File(") for n in notes)
    assert not any("matplotlib" in n or "pip" in n for n in notes)  # magics and shell lines are dropped


def test_a_missing_package_used_in_one_function_fails_only_that_function():
    path = IMPLS / "lab" / "missing_package_in_one_function.py"
    checks = records("lab/missing_package_in_one_function.py")
    bad = {name for name, r in checks.items() if r.status == "fail"}
    assert bad == {"dot_backward[3x3]:x", "dot_backward[3x3]:w", "dot_backward[5x5]:x", "dot_backward[5x5]:w"}
    line = line_of(path, "import h5py")
    assert (
        f"raised NameError: name 'h5py' is not defined: the import on line {line} failed (No module named 'h5py') "
        f"at missing_package_in_one_function.py, line {line_of(path, 'h5py.File')}: h5py.File"
    ) in checks["dot_backward[3x3]:x"].message


def test_statements_run_one_at_a_time_and_a_slow_one_is_stopped(tmp_path):
    path = tmp_path / "student.py"
    path.write_text(
        "import numpy as np\n"
        "raise SystemExit('the rest of the file still loads')\n"
        "while True:\n    pass\n"
        + CORRECT_LAB
    )
    result = check_impl(path, settings=CheckSettings(timeout=2.0))
    assert {r.status for r in result.records} == {"pass"}
    assert any(n.startswith("line 2: raise SystemExit(") and "SystemExit" in n for n in result.notes)
    assert any(n.startswith("line 3: while True:") and "past the time limit" in n for n in result.notes)


def test_a_file_cannot_import_convcli(tmp_path):
    path = tmp_path / "student.py"
    path.write_text(CORRECT_LAB + "\n\ndef conv_forward(X, w):\n    from convcli.layers import conv_forward\n"
                    "    return conv_forward(X, w)\n")
    checks = {r.name: r for r in check_impl(path, layers=["conv"]).records}
    message = checks["conv_forward[8x8 k3x3]"].message
    assert checks["conv_forward[8x8 k3x3]"].status == "fail"
    assert "ModuleNotFoundError: convcli cannot be imported by the code being checked" in message
    assert "(convcli's layers are the reference here; write the layer yourself) at student.py, line" in message


def test_a_syntax_error_in_a_py_file_cannot_be_checked(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("import numpy as np\n\ndef dot_forward(x, w):\n    return np.sum(x * w\n")
    with pytest.raises(FileNotChecked, match=r"cannot load '.*broken.py': SyntaxError at line 4: '\(' was never closed"):
        check_impl(path)


def test_a_notebook_cell_with_a_syntax_error_is_skipped(tmp_path):
    path = notebook(tmp_path / "nb.ipynb", "def oops(:\n    pass", CORRECT_LAB)
    result = check_impl(path)
    assert {r.status for r in result.records} == {"pass"}
    assert any(n.startswith("cell 1, line 1: def oops(: -- skipped (SyntaxError") for n in result.notes)


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "cannot read '{path}' as a Jupyter notebook"),
        ('{"cells": [{"cell_type": "markdown", "source": "hi"}]}', "notebook '{path}' has no code cells"),
    ],
)
def test_unreadable_notebooks(tmp_path, content, message):
    path = tmp_path / "bad.ipynb"
    path.write_text(content)
    with pytest.raises(ImplementationError) as info:
        read_source(path)
    assert str(info.value).startswith(message.format(path=path))


def test_scan_reads_names_and_parameters_without_running_anything(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("raise SystemExit\ndef conv_forward(A_prev, W, b, hparameters): pass\nclass Conv2D:\n"
                    "    def forward(self, x): pass\n")
    found = scan(read_source(path))
    assert found.functions == {"conv_forward": ["A_prev", "W", "b", "hparameters"]}
    assert found.classes == {"Conv2D": ["forward"]}


def test_a_file_matching_no_convention_lists_what_it_found():
    with pytest.raises(FileNotChecked) as info:
        check_impl(IMPLS / "lab" / "no_functions.py")
    message = str(info.value)
    assert "matches none of the conventions convcli knows (lab, cs231n, dlai, holberton)" in message
    assert "it defines: dot_fwd, convolution_forward" in message and "--api FILE.py" in message


def test_forcing_a_convention_the_file_does_not_follow(tmp_path):
    with pytest.raises(FileNotChecked) as info:
        check_impl(IMPLS / "lab" / "loops.py", api="cs231n")
    assert "defines none of the cs231n convention's functions" in str(info.value)
    assert "it defines: dot_forward, dot_backward, conv_forward, conv_backward" in str(info.value)


def test_hangs_and_crashes_fail_their_checks_and_the_rest_is_checked():
    hangs = records("lab/hangs.py", timeout=3.0)
    assert hangs["dot_backward[3x3]:x"].crashed and "did not finish within 3 s" in hangs["dot_backward[3x3]:x"].message
    assert hangs["conv_backward[8x8 k3x3]:w"].status == "pass"
    crashes = records("lab/crashes.py")
    assert "ended the process (exit status 3)" in crashes["dot_backward[3x3]:w"].message
    assert "killed by signal SIGSEGV" in crashes["conv_forward[8x8 k3x3]"].message
    assert crashes["dot_forward[3x3]"].status == "pass"
