"""Grading a class: 20 generated submissions, some broken, checked two at a time into one report of each kind."""

import functools
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from convcli.errors import ImplementationError, ParameterError
from convcli.gradcheck.classroom import (
    class_json,
    class_junit,
    find_submissions,
    grade_class,
    submission_report,
)
from convcli.gradcheck.formats import gradescope_results
from convcli.gradcheck.settings import CheckSettings

CORRECT = (Path(__file__).parent / "student_impls" / "lab" / "vectorized.py").read_text()

#: name -> (source, the functions that must fail; None: the file cannot be checked at all)
BROKEN = {
    "b_forward_offset": (CORRECT.replace('"ijkl,kl->ij", windows, w)', '"ijkl,kl->ij", windows, w) + 1'), {"conv_forward"}),
    "b_backward_w": (CORRECT.replace('return {"X": dX, "w": dw}', 'return {"X": dX, "w": 2 * dw}'), {"conv_backward"}),
    "b_backward_raises": (CORRECT.replace('return {"x": w * da', 'raise ValueError("todo")\n    return {"x": w * da'), {"dot_backward"}),
    "b_syntax": (CORRECT.replace("def dot_forward(x, w):", "def dot_forward(x, w)"), None),
    "b_nothing": ("print('hello')\n", None),
    "b_hangs": (CORRECT.replace("def conv_backward(X, w, dA=None):", "def conv_backward(X, w, dA=None):\n    while True:\n        pass"), {"conv_backward"}),
    "b_exits": (CORRECT.replace('return {"x": w * da', 'import os; os._exit(3)\n    return {"x": w * da'), {"dot_backward"}),
}
FUNCTIONS = ["dot_forward", "dot_backward", "conv_forward", "conv_backward"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    for i in range(13):
        (folder / f"student{i:02d}.py").write_text(f"# student {i}\n" + CORRECT)
    for name, (source, _) in BROKEN.items():
        (folder / f"{name}.py").write_text(source)
    (folder / ".hidden.py").write_text("syntax error (")  # an editor's file: not a submission
    (folder / "notes.txt").write_text("not code")
    submissions = find_submissions([folder])
    seen = []
    check = functools.partial(submission_report, settings=CheckSettings(timeout=10), api="lab")
    reports = grade_class(submissions, check, jobs=2, progress=seen.append)
    return submissions, reports, seen


def test_a_folder_gives_each_python_file(graded):
    submissions, reports, seen = graded
    assert len(submissions) == 20 == len(reports)
    assert [p.name for p in submissions] == sorted(p.name for p in submissions)
    assert [r.impl for r in reports] == [str(p) for p in submissions]
    assert sorted(seen) == list(range(1, 21))


def test_one_junit_with_a_testsuite_per_submission(graded):
    submissions, reports, _ = graded
    root = ET.fromstring(class_junit(reports))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"convcli.gradcheck.{p}" for p in submissions]
    failing = {Path(s.get("name")).stem for s in suites if int(s.get("failures")) + int(s.get("errors")) > 0}
    assert failing == set(BROKEN)  # a file that cannot be checked has an erring "load" testcase
    for suite in suites:
        if Path(suite.get("name")).stem in ("b_syntax", "b_nothing"):
            assert [case.get("name") for case in suite.iter("testcase")] == ["load"]
            assert suite.find("testcase/error") is not None
    assert int(root.get("tests")) == sum(int(s.get("tests")) for s in suites) == len(list(root.iter("testcase")))
    assert int(root.get("failures")) + int(root.get("errors")) == sum(
        1 for case in root.iter("testcase") if case.find("failure") is not None or case.find("error") is not None
    )


def test_one_json_with_a_summary_line_per_submission(graded):
    _, reports, _ = graded
    document = json.loads(class_json(reports, version="test"))
    verdicts = {Path(s["impl"]).stem: s for s in document["submissions"]}
    assert {name for name, s in verdicts.items() if not s["passed"]} == set(BROKEN)
    assert document["passed"] is False and document["summary"] == {"submissions": 20, "passed": 13, "failed": 7}
    assert re.fullmatch(r"PASSED: (\d+) checks of .*student00\.py: \1 passed, 0 failed, 0 skipped \(seed 0\)",
                        verdicts["student00"]["summary"])
    assert verdicts["b_syntax"]["error"].startswith("cannot load") and verdicts["b_syntax"]["total"] == 0
    assert "defines none of the lab convention's functions" in verdicts["b_nothing"]["error"]
    assert len(document["reports"]) == 20


def test_one_gradescope_file_scores_each_function(graded):
    _, reports, _ = graded
    results = gradescope_results(reports)
    scores = {}
    for test in results["tests"]:
        stem, function = test["name"].split(".py: ")
        scores.setdefault(stem, {})[function] = test["score"]
    assert all(list(s) == FUNCTIONS for s in scores.values())
    for name, (_, fails) in BROKEN.items():
        wrong = set(FUNCTIONS) if fails is None else fails
        assert {f for f, score in scores[name].items() if score == 0} == wrong, name
    assert all(sum(scores[f"student{i:02d}"].values()) == 4 for i in range(13))
    assert results["score"] == 13 * 4 + sum(4 - len(fails) for _, fails in BROKEN.values() if fails)


def test_find_submissions_errors(tmp_path):
    with pytest.raises(ImplementationError, match="holds no .py or .ipynb file"):
        find_submissions([tmp_path])
    with pytest.raises(ImplementationError, match="'missing.py' does not exist"):
        find_submissions(["missing.py"])
    (tmp_path / "a.py").write_text("")
    assert find_submissions([tmp_path, tmp_path / "a.py"]) == [tmp_path / "a.py"]


def test_jobs_must_be_positive():
    with pytest.raises(ParameterError, match="-j must be at least 1; got 0"):
        grade_class([Path("a.py")], lambda p: p, jobs=0)
