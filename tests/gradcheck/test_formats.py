"""Gradescope results, GitHub annotations and safe text, on reports built by hand.

The GitHub side is checked with a parser written here from GitHub's rules
(``::error k=v,k=v::message``, ``%25 %0D %0A`` in both, ``%3A %2C`` in values),
so a name or message that could break out of its field shows up as a
mis-parsed annotation.
"""

import json
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.errors import ParameterError
from convcli.gradcheck.classroom import class_json, class_junit
from convcli.gradcheck.formats import (
    annotation,
    escape_data,
    escape_property,
    gradescope_results,
    json_text,
    load_points,
    to_github,
    to_gradescope,
    xml_text,
)
from convcli.gradcheck.reports import CheckRecord, CheckReport


def record(name, status, message="", **extra):
    function = name.split(":")[0].split("[")[0]
    kind = "backward" if ":" in name else "forward"
    return CheckRecord(name=name, function=function, kind=kind, status=status, message=message, **extra)


def report(impl="lab.py", checks=None, error=None, lines=None):
    checks = checks if checks is not None else [
        record("dot_forward", "pass", "dot_forward: matches"),
        record("dot_backward:x", "pass"),
        record("dot_backward:w", "fail", "dot_backward: gradient for 'w' wrong at [0, 1]"),
        record("conv_forward", "fail", "conv_forward: wrong at [2, 3]: expected 1.0, got 2.0"),
        record("conv_backward:X", "skip", "lab.py defines no conv_backward"),
        record("conv_backward:w", "skip", "lab.py defines no conv_backward"),
    ]
    result = CheckReport(checks=checks, seed=0, settings={}, version="0", impl=impl, seconds=1.5)
    if error is not None:
        result.error = error
    if lines is not None:
        result.lines = lines
    return result


# ----------------------------------------------------------------------------- a parser for GitHub's commands


def unescape(text):
    return re.sub("%(25|0D|0A|3A|2C)", lambda m: {"25": "%", "0D": "\r", "0A": "\n", "3A": ":", "2C": ","}[m.group(1)], text)


def parse_command(line):
    """``::error a=1,b=2::msg`` -> ``("error", {"a": "1", "b": "2"}, "msg")``, as the runner reads it."""
    match = re.fullmatch(r"::(\w+)(?: ([^:]*))?::(.*)", line)
    assert match, f"not a workflow command: {line!r}"
    command, props, data = match.groups()
    properties = {}
    for pair in (props or "").split(","):
        key, _, value = pair.partition("=")
        properties[key] = unescape(value)
    return command, properties, unescape(data)


# ----------------------------------------------------------------------------- GitHub


def test_one_annotation_per_failed_check_at_the_function_line():
    text = to_github([report(lines={"dot_backward": 7, "conv_forward": 21})])
    lines = text.splitlines()
    commands = [parse_command(line) for line in lines if line.startswith("::")]
    assert [c[1]["title"] for c in commands] == ["gradcheck dot_backward:w", "gradcheck conv_forward"]
    assert [c[1]["line"] for c in commands] == ["7", "21"] and {c[1]["file"] for c in commands} == {"lab.py"}
    assert commands[1][2] == "conv_forward: wrong at [2, 3]: expected 1.0, got 2.0"
    assert all(c[0] == "error" for c in commands)
    assert lines[-1].startswith("FAILED: 6 checks of lab.py")


def test_escaping_follows_githubs_rules():
    assert escape_data("100% done\r\nnext") == "100%25 done%0D%0Anext"
    assert escape_property("a:b,c%\n") == "a%3Ab%2Cc%25%0A"
    line = annotation("dir/we,ird:name.py", "check:x,y", "two\nlines: 50%", line=3)
    assert line == "::error file=dir/we%2Cird%3Aname.py,line=3,title=check%3Ax%2Cy::two%0Alines: 50%25"


@settings(max_examples=60, deadline=None)
@given(path=st.text(min_size=1, max_size=30), title=st.text(max_size=30), message=st.text(max_size=60))
def test_no_student_text_breaks_out_of_its_field(path, title, message):
    line = annotation(path, title, message, line=5)
    assert "\n" not in line and "\r" not in line
    command, properties, _ = parse_command(line)
    assert command == "error" and set(properties) == {"file", "line", "title"} and properties["line"] == "5"


def test_a_file_that_cannot_be_checked_gets_one_annotation():
    broken = report("broken.py", checks=[], error="SyntaxError at line 3: def f(:")
    text = to_github([broken])
    command, properties, message = parse_command(text.splitlines()[0])
    assert properties["file"] == "broken.py" and message == "SyntaxError at line 3: def f(:"
    assert text.splitlines()[1] == "ERROR: broken.py could not be checked: SyntaxError at line 3: def f(:"


def test_forged_commands_in_messages_stay_inside_the_message():
    evil = record("conv_forward", "fail", "x\n::add-mask::secret\r\n::error::forged\x1b[2J")
    lines = to_github([report("lab.py\n::warning::x.py", checks=[evil])]).splitlines()
    assert len(lines) == 2 and lines[0].startswith("::error file=") and not lines[1].startswith("::")
    assert parse_command(lines[0])[2] == "x\n::add-mask::secret\n::error::forged"


# ----------------------------------------------------------------------------- Gradescope


def test_gradescope_one_point_per_function_all_or_nothing():
    results = gradescope_results([report()])
    tests = {t["name"]: t for t in results["tests"]}
    assert list(tests) == ["dot_forward", "dot_backward", "conv_forward", "conv_backward"]
    assert [(t["score"], t["max_score"], t["status"]) for t in tests.values()] == [
        (1.0, 1.0, "passed"),
        (0.0, 1.0, "failed"),  # x passed, w failed: nothing
        (0.0, 1.0, "failed"),
        (0.0, 1.0, "failed"),  # not defined
    ]
    assert results["score"] == 1.0 and results["execution_time"] == 1.5
    assert "FAIL  dot_backward:w: gradient for 'w' wrong at [0, 1]" in tests["dot_backward"]["output"]
    assert "not defined  conv_backward:X" in tests["conv_backward"]["output"]
    for test in results["tests"]:
        assert set(test) == {"name", "score", "max_score", "status", "output"}


def test_points_file_weights_functions(tmp_path):
    points = tmp_path / "points.toml"
    points.write_text("[points]\ndot_forward = 2\nconv_forward = 3.5\n")
    weights = load_points(points)
    assert weights == {"dot_forward": 2.0, "conv_forward": 3.5}
    good = report(checks=[record("dot_forward", "pass"), record("conv_forward", "pass"), record("dot_backward:x", "pass")])
    results = gradescope_results([good], points=weights)
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("dot_forward", 2.0, 2.0),
        ("conv_forward", 3.5, 3.5),
        ("dot_backward", 1.0, 1.0),  # not in the file: one point
    ]
    assert results["score"] == 6.5
    top_level = tmp_path / "top.toml"
    top_level.write_text("conv_forward = 0\n")
    assert load_points(top_level) == {"conv_forward": 0.0}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("conv_forward = -1\n", "conv_forward = -1; expected a number of points >= 0"),
        ("conv_forward = 'two'\n", "conv_forward = 'two'; expected a number of points >= 0"),
        ("conv_forward = true\n", "conv_forward = True; expected a number"),
        ("conv_forward = nan\n", "conv_forward = nan; expected"),
        ("conv_forward = \n", "is not valid TOML"),
        ("", "names no function"),
    ],
)
def test_bad_points_files_are_refused(tmp_path, text, expected):
    points = tmp_path / "points.toml"
    points.write_text(text)
    with pytest.raises(ParameterError, match=re.escape(expected)):
        load_points(points)


def test_points_naming_an_unchecked_function_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="--points names 'conv_fwd', which no submission was checked on"):
        gradescope_results([report()], points={"conv_fwd": 1.0})
    with pytest.raises(ParameterError, match="cannot be read"):
        load_points(tmp_path / "missing.toml")


def test_gradescope_for_a_class_with_a_broken_file():
    broken = report("students/bob.py", checks=[], error="cannot load: SyntaxError")
    results = json.loads(to_gradescope([report("students/alice.py"), broken]))
    names = [t["name"] for t in results["tests"]]
    assert names[:4] == [f"alice.py: {f}" for f in ("dot_forward", "dot_backward", "conv_forward", "conv_backward")]
    bob = results["tests"][4:]
    assert [t["name"] for t in bob] == [n.replace("alice", "bob") for n in names[:4]]
    assert all(t["score"] == 0 and t["max_score"] == 1 and "SyntaxError" in t["output"] for t in bob)
    assert results["score"] == 1.0


# ----------------------------------------------------------------------------- safe text in XML and JSON


def test_control_characters_and_bad_names_give_well_formed_xml_and_json():
    name = "stu\x01dent\udcff.py"
    checks = [record("conv_forward", "fail", "bad \x00\x1b[31m value \ufffe"), record("dot_forward", "pass")]
    reports = [report(name, checks=checks), report("ok.py")]
    root = ET.fromstring(class_junit(reports).encode())
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["convcli.gradcheck.stu\\x01dent\\udcff.py", "convcli.gradcheck.ok.py"]
    assert root.get("tests") == "8" and root.get("failures") == "3"
    document = json.loads(class_json(reports))
    assert document["submissions"][0]["impl"] == "stu\x01dent\\udcff.py"
    assert "\udcff" not in json.dumps(document, ensure_ascii=False)
    gradescope = to_gradescope(reports)
    assert json.loads(gradescope)["tests"][0]["name"] == "student\\udcff.py: conv_forward"
    assert not re.search(r"(?<!\\)\\u(d[89a-f]|00)", gradescope), "no escaped surrogate or control character"


def test_safe_text_helpers():
    assert xml_text("a\x01b\x7fc\ud800") == "a\\x01b\x7fc\\ud800"
    assert json_text("a\x01b\udcff") == "a\x01b\\udcff"


def test_annotations_find_the_function_line_in_the_file(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text("import numpy as np\n\n\ndef dot_backward(x, w, da):\n    pass\n\n\nclass Conv:\n    def forward(self, X):\n        pass\n")
    failing = [record("dot_backward:w", "fail", "wrong"), record("Conv.forward", "fail", "wrong")]
    commands = [parse_command(line) for line in to_github([report(str(lab), checks=failing)]).splitlines()[:2]]
    assert [c[1]["line"] for c in commands] == ["4", "9"]
    notebook = tmp_path / "lab.ipynb"
    notebook.write_text('{"cells": [{"source": [\n"import numpy\\n",\n"def dot_backward(x, w, da):\\n"]}]}\n')
    command = parse_command(to_github([report(str(notebook), checks=failing[:1])]).splitlines()[0])
    assert command[1]["line"] == "3"
