"""``convcli gradcheck`` through click's CliRunner: the self-check, students' files, reports in every outcome."""

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from convcli.cli import cli

IMPLS = Path(__file__).parents[1] / "gradcheck" / "student_impls"
NOTEBOOK = Path(__file__).parents[1] / "gradcheck" / "notebooks" / "lab.ipynb"
LAB = str(IMPLS / "lab" / "lab.py")
CORRECT = str(IMPLS / "lab" / "vectorized.py")


def run(*args):
    return CliRunner().invoke(cli, ["gradcheck", *args])


def error_line(result):
    """The one ``Error:`` line a failure prints (and nothing that looks like a traceback)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def shared_console(monkeypatch, **options):
    """Stand in for the shared stdout console: a rich Console writing to a buffer."""
    from rich.console import Console

    console = Console(file=io.StringIO(), **options)
    monkeypatch.setattr("convcli.cli.gradcheck.stdout_console", lambda: console)
    return console


# ----------------------------------------------------------------------------- the self-check


def test_self_check_covers_the_new_layers_and_passes():
    result = run("--format", "json", "--seed", "3")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is True and document["seed"] == 3 and document["impl"] is None
    names = [check["name"] for check in document["checks"]]
    assert "conv_backward[w=3x3,padding=same,stride=1,border=reflect]:X" in names
    assert "conv_backward[1x3x7x7,3x1x3x3,padding=1,stride=2,groups=3,bias=True]:b" in names  # depthwise
    assert any("groups=2" in n for n in names) and any("dilation=2" in n for n in names)
    assert "pool_backward[2x2x7x9,size=3,stride=2,mode=avg]:X" in names  # overlapping windows
    assert "pool_backward[2x2x7x9,size=3,stride=2,mode=max]:X" in names
    assert any(n.startswith("affine_backward[") and n.endswith(":x") for n in names)
    assert {check["status"] for check in document["checks"]} == {"pass"}


def test_self_check_of_one_layer():
    result = run("--layer", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "PASSED: 3 checks of convcli: 3 passed, 0 failed, 0 skipped (seed 0)"


# ----------------------------------------------------------------------------- a student's file


def test_a_file_as_json_with_case_and_convention_fields():
    result = run("--impl", LAB, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["passed"] is False and document["convention"] == "lab" and document["error"] is None
    assert document["settings"] == {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "mode": "full", "size": None,
                                    "kernel_size": None, "timeout": 60.0}
    check = next(c for c in document["checks"] if c["name"] == "conv_backward[7x9 k3x3]:w")
    assert check["case"] == "7x9 k3x3" and check["convention"] == "lab" and check["input"] == "w"
    assert "convention: lab (chosen by --api auto" in document["notes"][0]


def test_the_labs_notebook_in_text():
    result = run("--impl", str(NOTEBOOK), "--layer", "conv")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["conv_forward[8x8", "k3x3]", "PASS"] for line in lines)
    assert any("note: cell 3, line 2: from lib.checking import gradient_check -- skipped" in line for line in lines)
    assert lines[-1] == f"FAILED: 12 checks of {NOTEBOOK}: 2 passed, 10 failed (6 crashed), 0 skipped (seed 0)"


def test_one_case_by_hand_non_square():
    result = run("--impl", CORRECT, "--size", "7x9", "--kernel-size", "3", "--layer", "conv", "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [c["name"] for c in document["checks"]] == [
        "conv_forward[7x9 k3x3]", "conv_backward[7x9 k3x3]:X", "conv_backward[7x9 k3x3]:w"]
    assert document["settings"]["size"] == "7x9" and document["settings"]["kernel_size"] == "3x3"


def test_a_forced_convention_and_an_adapter():
    result = run("--impl", str(IMPLS / "cs231n" / "loops.py"), "--api", "cs231n", "--layer", "pool", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["convention"] == "cs231n"
    adapters = Path(__file__).parents[2] / "docs" / "adapters" / "class_layer"
    result = run("--impl", str(adapters / "conv_layer.py"), "--api", str(adapters / "adapter.py"), "--size", "6x5")
    assert result.exit_code == 0, result.output
    assert "Conv2D.backward[N2 C3 K4 6x5 k3x3 s1 p0]:W" in result.stdout


def test_table_off_a_terminal_keeps_each_check_on_one_line(monkeypatch):
    console = shared_console(monkeypatch, width=50, force_terminal=False)
    result = run("--impl", LAB, "--layer", "dot")
    assert result.exit_code == 1
    lines = console.file.getvalue().splitlines()
    row = next(line for line in lines if line.lstrip().startswith("dot_backward[3x3]:w"))
    assert row.rstrip().endswith("it is the gradient for an upstream gradient of ones: multiply by the upstream gradient")
    assert lines[-1] == f"FAILED: 6 checks of {LAB}: 2 passed, 4 failed, 0 skipped (seed 0)"
    assert console.width == 50  # printed at full width without changing the shared console
    assert all(line == line.rstrip() for line in lines)  # no padding to the widest row
    header = next(line for line in lines if "abs err" in line)
    assert header.split() == ["check", "result", "abs", "err", "rel", "err", "worst", "index", "message"]


def test_help_says_what_worst_means():
    result = run("--help")
    assert "the one furthest outside tolerance" in " ".join(result.output.split())


def test_crash_is_a_junit_error_and_exit_1(tmp_path):
    report = tmp_path / "r.xml"
    result = run("--impl", str(IMPLS / "lab" / "hangs.py"), "--timeout", "1", "--layer", "dot", "--size", "3",
                 "--report", str(report))
    assert result.exit_code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert [suite.get(k) for k in ("tests", "failures", "errors")] == ["3", "0", "2"]
    error = suite.findall("testcase")[1].find("error")
    assert error.get("message") == "dot_backward[3x3]:x: did not finish within 1 s (its process was stopped)"


# ----------------------------------------------------------------------------- reports in every outcome

CANNOT = [
    (["--impl", str(IMPLS / "lab" / "no_functions.py")], "matches none of the conventions convcli knows"),
    (["--impl", str(IMPLS / "lab" / "syntax_error.py")], "SyntaxError at line 5: '(' was never closed"),
    (["--impl", "nowhere.py"], "implementation file 'nowhere.py' does not exist; give the .py or .ipynb file"),
    (["--impl", str(IMPLS / "lab" / "loops.py"), "--api", "cs231n"], "defines none of the cs231n convention's functions"),
    (["--impl", str(IMPLS / "lab" / "loops.py"), "--layer", "pool"], "the lab convention has no pool layer"),
    (["--impl", str(IMPLS / "lab" / "loops.py"), "--api", "cs231n.py"], "adapter file 'cs231n.py' does not exist"),
]


@pytest.mark.parametrize("args, message", CANNOT)
def test_a_file_that_cannot_be_checked_still_gets_every_report(tmp_path, args, message):
    json_report, xml_report = tmp_path / "r.json", tmp_path / "r.xml"
    result = run(*args, "--format", "junit", "--report", str(json_report))
    assert result.exit_code == 2
    assert error_line(result).startswith("Error: ") and message in error_line(result)
    document = json.loads(json_report.read_text())
    assert document["passed"] is False and message in document["error"] and document["checks"] == []
    suite = ET.fromstring(result.stdout).find("testsuite")
    load = suite.find("testcase")
    assert load.get("name") == "load" and message in load.find("error").get("message")
    assert [suite.get(k) for k in ("tests", "errors")] == ["1", "1"]
    result = run(*args, "--format", "json", "--report", str(xml_report))
    assert result.exit_code == 2 and json.loads(result.stdout)["error"] == document["error"]
    assert ET.parse(xml_report).getroot().find("testsuite/testcase/error") is not None


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size", "5"], "Error: --size is only used with --impl FILE"),
        (["--api", "dlai"], "Error: --api is only used with --impl FILE"),
        (["--impl", LAB, "--kernel-size", "9"], "Error: --kernel-size 9x9 is larger than --size 8x8"),
        (["--impl", LAB, "--size", "7x"], "Error: --size must be N or HxW (e.g. 8 or 7x9); got '7x'"),
        (["--atol", "inf"], "Error: need finite eps > 0, atol >= 0 and rtol >= 0; got eps=1e-06, atol=inf, rtol=0.001"),
        (["--report", "results.txt"], "Error: --report must end in .json or .xml; got 'results.txt'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert error_line(result).startswith(message)
    assert result.stdout == ""


def test_a_square_convention_refuses_a_non_square_kernel():
    result = run("--impl", LAB, "--layer", "conv", "--size", "8", "--kernel-size", "3x2", "--format", "json")
    assert result.exit_code == 2
    assert "the lab convention's kernels are square (FxF); got --kernel-size 3x2" in json.loads(result.stdout)["error"]


def test_a_huge_timeout_is_only_a_long_wait():
    result = run("--impl", LAB, "--layer", "dot", "--timeout", "1e30", "--format", "json")
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["settings"]["timeout"] == 1e30


def test_option_ranges_are_click_errors():
    result = run("--eps", "0")
    assert result.exit_code == 2 and "--eps" in result.stderr
    result = run("--layer", "lstm")
    assert result.exit_code == 2 and "'lstm' is not one of 'dot', 'affine', 'conv', 'pool'" in result.stderr


def test_help_has_examples():
    result = run("--help")
    assert result.exit_code == 0
    assert "convcli gradcheck --impl lab.ipynb --layer conv --size 7x9 --kernel-size 3" in result.stdout


@pytest.mark.parametrize(
    "top_level, message",
    [
        ("import os\nos._exit(3)\n", "ended the process (exit status 3)"),
        ("{not json", "as a Jupyter notebook"),
    ],
)
def test_a_file_that_dies_or_is_unreadable_while_loading_still_gets_a_report(tmp_path, top_level, message):
    path = tmp_path / ("student.ipynb" if top_level.startswith("{") else "student.py")
    path.write_text(top_level + ("" if path.suffix == ".ipynb" else (IMPLS / "lab" / "loops.py").read_text()))
    result = run("--impl", str(path), "--format", "junit", "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 2 and message in error_line(result)
    assert ET.fromstring(result.stdout).find("testsuite/testcase").get("name") == "load"
    assert message in json.loads((tmp_path / "r.json").read_text())["error"]


def test_a_file_name_with_control_characters_still_gives_well_formed_reports(tmp_path):
    path = tmp_path / "stu\x01dent.py"
    path.write_text((IMPLS / "lab" / "lab.py").read_text())
    result = run("--impl", str(path), "--layer", "dot", "--format", "junit", "--report", str(tmp_path / "r.json"))
    assert result.exit_code == 1
    suite = ET.fromstring(result.stdout).find("testsuite")  # parses: no raw \x01 in the XML
    assert suite.get("failures") == "4"
    assert json.loads((tmp_path / "r.json").read_text())["impl"] == str(path)
