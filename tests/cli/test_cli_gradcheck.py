"""``convcli gradcheck`` through click: exit status, exact Error lines, JSON on stdout, report files."""

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from convcli.cli import cli

IMPLS = Path(__file__).parents[1] / "gradcheck" / "student_impls"
LAB = str(IMPLS / "lab.py")


def run(*args):
    return CliRunner().invoke(cli, ["gradcheck", *args])


def error_line(result):
    """The one ``Error:`` line a usage error prints (and nothing that looks like a traceback)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_self_check_passes_as_json():
    result = run("--format", "json", "--seed", "3")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["passed"] is True and document["seed"] == 3 and document["impl"] is None
    assert document["settings"] == {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "mode": "full"}
    names = [check["name"] for check in document["checks"]]
    assert "conv_backward[w=3x3,padding=same,stride=1,border=reflect]:X" in names
    assert {check["status"] for check in document["checks"]} == {"pass"}


def test_self_check_text_table_and_summary():
    result = run("--layer", "dot")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["dot_backward:w", "PASS"] for line in lines)
    assert lines[-1] == "PASSED: 3 checks of convcli: 3 passed, 0 failed, 0 skipped (seed 0)"


def test_lab_json_verdicts():
    result = run("--impl", LAB, "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)  # stdout holds the JSON document alone
    assert document["passed"] is False
    assert document["settings"] == {
        "eps": 1e-6,
        "atol": 1e-5,
        "rtol": 1e-3,
        "mode": "full",
        "size": 8,
        "kernel_size": 3,
        "timeout": 60.0,
    }
    verdicts = {check["name"]: check["status"] for check in document["checks"]}
    assert verdicts == {
        "dot_forward": "pass",
        "dot_backward:x": "fail",
        "dot_backward:w": "fail",
        "conv_forward": "pass",
        "conv_backward:X": "pass",
        "conv_backward:w": "fail",
    }
    w = document["checks"][-1]
    assert (w["function"], w["input"], w["kind"], w["passed"]) == ("conv_backward", "w", "backward", False)
    assert w["message"].startswith(f"conv_backward: gradient for 'w' wrong at {w['worst_index']}: numerical ")
    assert document["checks"][0]["input"] is None


def test_lab_text_and_junit_report(tmp_path):
    report = tmp_path / "results.xml"
    result = run("--impl", LAB, "--report", str(report))
    assert result.exit_code == 1
    rows = {
        line.split()[0]: line.split()[1]
        for line in result.stdout.splitlines()
        if line.strip().startswith(("dot_", "conv_"))
    }
    assert rows == {
        "dot_forward": "PASS",
        "dot_backward:x": "FAIL",
        "dot_backward:w": "FAIL",
        "conv_forward": "PASS",
        "conv_backward:X": "PASS",
        "conv_backward:w": "FAIL",
    }
    assert result.stdout.splitlines()[-1] == f"FAILED: 6 checks of {LAB}: 3 passed, 3 failed, 0 skipped (seed 0)"

    suite = ET.parse(report).getroot().find("testsuite")
    assert suite.get("name") == "convcli.gradcheck"
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["6", "3", "0", "0"]
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {case.get("classname") for case in cases.values()} == {"convcli.gradcheck.lab"}
    assert (
        cases["conv_backward:w"].find("failure").get("message").startswith("conv_backward: gradient for 'w' wrong at ")
    )
    assert cases["conv_backward:X"].find("failure") is None

    # a second run refuses to overwrite the report, before doing any work
    again = run("--impl", LAB, "--report", str(report))
    assert again.exit_code == 2
    assert error_line(again) == f"Error: output '{report}' already exists; use --force to overwrite it"
    report.write_text("old")
    forced = run("--impl", LAB, "--report", str(report), "--force", "--layer", "dot")
    assert forced.exit_code == 1
    assert ET.parse(report).getroot().find("testsuite").get("tests") == "3"


def shared_console(monkeypatch, **options):
    """Stand in for the shared stdout console: a rich Console writing to a buffer."""
    from rich.console import Console

    console = Console(file=io.StringIO(), **options)
    monkeypatch.setattr("convcli.cli.gradcheck.stdout_console", lambda: console)
    return console


def test_table_off_a_terminal_keeps_each_check_on_one_line(monkeypatch):
    console = shared_console(monkeypatch, width=50, force_terminal=False)
    result = run("--impl", LAB, "--layer", "dot")
    assert result.exit_code == 1
    lines = console.file.getvalue().splitlines()
    row = next(line for line in lines if line.lstrip().startswith("dot_backward:w"))
    message = row.split(None, 6)[6].rstrip()
    assert message.startswith("gradient for 'w' wrong at [1, 0]: numerical ") and message.endswith(")")
    assert lines[-1] == f"FAILED: 3 checks of {LAB}: 1 passed, 2 failed, 0 skipped (seed 0)"
    assert console.width == 50  # printed at full width without changing the shared console
    assert all(line == line.rstrip() for line in lines)  # no padding to the widest row
    header = next(line for line in lines if "abs err" in line)
    assert header.split() == ["check", "result", "abs", "err", "rel", "err", "worst", "index", "message"]


def test_help_says_what_worst_means():
    result = run("--help")
    assert "the one furthest outside tolerance" in " ".join(result.output.split())


def test_table_on_a_terminal_fits_the_window(monkeypatch):
    console = shared_console(monkeypatch, width=70, force_terminal=True, color_system=None)
    result = run("--impl", LAB, "--layer", "dot")
    assert result.exit_code == 1
    lines = console.file.getvalue().splitlines()
    assert max(len(line) for line in lines[:-1]) <= 70  # the table wraps its messages to the window
    assert len(lines) > 8


def test_progress_bar_leaves_stdout_to_the_document(monkeypatch):
    monkeypatch.setattr("convcli.cli.gradcheck.progress_enabled", lambda quiet: True)  # as on a terminal
    result = run("--impl", str(IMPLS / "only_dot.py"), "--format", "json")
    assert result.exit_code == 0, result.output
    assert [check["status"] for check in json.loads(result.stdout)["checks"]] == ["pass"] * 3 + ["skip"] * 3


def test_json_report_matches_stdout_and_junit_goes_to_stdout(tmp_path):
    report = tmp_path / "results.json"
    result = run("--impl", str(IMPLS / "only_dot.py"), "--format", "json", "--report", str(report))
    assert result.exit_code == 0  # skipped checks do not fail the run
    assert json.loads(report.read_text()) == json.loads(result.stdout)
    skipped = [c for c in json.loads(result.stdout)["checks"] if c["status"] == "skip"]
    assert [c["name"] for c in skipped] == ["conv_forward", "conv_backward:X", "conv_backward:w"]
    assert all(c["passed"] is True for c in skipped)

    junit = run("--impl", str(IMPLS / "only_dot.py"), "--format", "junit", "--layer", "conv")
    assert junit.exit_code == 0
    suite = ET.fromstring(junit.stdout).find("testsuite")
    assert [suite.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["3", "0", "0", "3"]
    assert all(case.find("skipped") is not None for case in suite.iter("testcase"))


def test_report_format_is_chosen_by_the_extension_alone(tmp_path):
    for name in ("R.JSON", ".json"):
        result = run("--layer", "dot", "--format", "junit", "--report", str(tmp_path / name))
        assert result.exit_code == 0, result.output
        assert ET.fromstring(result.stdout).find("testsuite").get("tests") == "3"  # stdout follows --format
        assert json.loads((tmp_path / name).read_text())["passed"] is True  # the file follows its extension


def test_crash_is_a_junit_error_and_exit_1(tmp_path):
    report = tmp_path / "r.xml"
    result = run("--impl", str(IMPLS / "hangs.py"), "--timeout", "1", "--layer", "dot", "--report", str(report))
    assert result.exit_code == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert [suite.get(k) for k in ("tests", "failures", "errors")] == ["3", "0", "2"]
    error = suite.findall("testcase")[1].find("error")
    assert error.get("message").startswith("dot_backward did not finish within 1 s (its process was stopped); ")


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--impl", "nowhere.py"],
            "Error: implementation file 'nowhere.py' does not exist; give the .py file with your lab functions",
        ),
        (["--impl", ""], "Error: the implementation file name is empty; give the .py file with your lab functions"),
        (
            ["--impl", "lab.ipynb"],
            "Error: implementation file 'lab.ipynb' does not exist; give the .py file with your lab functions",
        ),
        (
            ["--impl", str(IMPLS)],
            f"Error: implementation file '{IMPLS}' is a folder; give the .py file with your lab functions",
        ),
        (
            ["--impl", str(IMPLS / "syntax_error.py")],
            f"Error: cannot load '{IMPLS / 'syntax_error.py'}': SyntaxError at line 5: '(' was never closed: return np.sum(x * w",
        ),
        (
            ["--impl", str(IMPLS / "no_functions.py")],
            f"Error: '{IMPLS / 'no_functions.py'}' defines none of the lab's functions "
            "(dot_forward, dot_backward, conv_forward, conv_backward)",
        ),
        (
            ["--size", "5"],
            "Error: --size is only used with --impl FILE.py (the self-check chooses its own sizes and runs no user code to time)",
        ),
        (
            ["--kernel-size", "2", "--timeout", "3"],
            "Error: --kernel-size and --timeout are only used with --impl FILE.py (the self-check chooses its own sizes and runs no user code to time)",
        ),
        (
            ["--impl", LAB, "--kernel-size", "9"],
            "Error: need 1 <= kernel size <= image size; got kernel size 9 and image size 8",
        ),
        (["--atol", "inf"], "Error: need finite eps > 0, atol >= 0 and rtol >= 0; got eps=1e-06, atol=inf, rtol=0.001"),
        (["--impl", LAB, "--timeout", "inf"], "Error: timeout must be a positive, finite number of seconds; got inf"),
        (["--report", "results.txt"], "Error: --report must end in .json or .xml; got 'results.txt'"),
        (["--report", "no/such/folder/r.xml"], "Error: output folder 'no/such/folder' does not exist; create it first"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args, message):
    result = run(*args)
    assert result.exit_code == 2
    assert error_line(result) == message
    assert result.stdout == ""


def test_a_huge_timeout_is_only_a_long_wait():
    result = run("--impl", LAB, "--layer", "dot", "--timeout", "1e30", "--format", "json")
    assert result.exit_code == 1, result.output  # the lab's dot_backward fails; the wait did not overflow
    assert json.loads(result.stdout)["settings"]["timeout"] == 1e30


def test_import_error_names_the_line():
    result = run("--impl", str(IMPLS / "import_error.py"), "--format", "json")
    assert result.exit_code == 2
    assert error_line(result).endswith(
        "running it raised ModuleNotFoundError: No module named 'lib' at import_error.py, line 3: "
        "from lib.checking import gradient_check "
        '(code outside the functions runs when the file is loaded: move it under if __name__ == "__main__":)'
    )


def test_option_ranges_are_click_errors():
    result = run("--eps", "0")
    assert result.exit_code == 2 and "--eps" in result.stderr
    result = run("--seed", "-1")
    assert result.exit_code == 2 and "Error: Invalid value for '--seed': -1 is not in the range x>=0." in result.stderr
    result = run("--layer", "pool")
    assert result.exit_code == 2 and "'pool' is not one of 'dot', 'conv'" in result.stderr


def test_help_has_examples():
    result = run("--help")
    assert result.exit_code == 0
    assert "convcli gradcheck --impl student.py --report results.xml" in result.stdout
