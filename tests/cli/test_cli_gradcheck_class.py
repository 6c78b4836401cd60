"""``convcli gradcheck`` as a grader: folders and repeated --impl, -j, --format gradescope|github, --points, --memory."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from convcli.cli import cli

LAB = Path(__file__).parents[1] / "gradcheck" / "student_impls" / "lab"
ATTACKS = Path(__file__).parents[1] / "gradcheck" / "attacks"
FAST = ["gradcheck", "--api", "lab", "--layer", "dot", "--timeout", "20"]


def invoke(*args):
    return CliRunner().invoke(cli, [*FAST, *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    good = (LAB / "vectorized.py").read_text()
    (folder / "alice.py").write_text(good)
    (folder / "bob.py").write_text(good.replace("return float(np.tensordot(x, w, axes=2))", "return 0.0"))
    (folder / "carol.py").write_text("def dot_forward(x, w)\n")  # cannot be checked
    return folder


def test_gradescope_results_for_a_folder(submissions):
    result = invoke("--impl", submissions, "-j", "2", "--format", "gradescope")
    assert result.exit_code == 1  # bob and carol failed
    results = json.loads(result.stdout)
    scores = {t["name"]: (t["score"], t["max_score"], t["status"]) for t in results["tests"]}
    assert scores == {
        "alice.py: dot_forward": (1.0, 1.0, "passed"),
        "alice.py: dot_backward": (1.0, 1.0, "passed"),
        "bob.py: dot_forward": (0.0, 1.0, "failed"),
        "bob.py: dot_backward": (1.0, 1.0, "passed"),
        "carol.py: dot_forward": (0.0, 1.0, "failed"),
        "carol.py: dot_backward": (0.0, 1.0, "failed"),
    }
    assert results["score"] == 3.0


def test_points_weight_functions(submissions, tmp_path):
    points = tmp_path / "points.toml"
    points.write_text("[points]\ndot_forward = 3\ndot_backward = 2\n")
    result = invoke("--impl", submissions / "alice.py", "--format", "gradescope", "--points", points)
    assert result.exit_code == 0, result.output
    results = json.loads(result.stdout)
    assert [(t["name"], t["score"], t["max_score"]) for t in results["tests"]] == [
        ("dot_forward", 3.0, 3.0),
        ("dot_backward", 2.0, 2.0),
    ]


def test_one_junit_and_json_for_repeated_impl(submissions, tmp_path):
    report = tmp_path / "class.xml"
    result = invoke("--impl", submissions / "alice.py", "--impl", submissions / "bob.py", "--format", "json", "--report", report)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert [(Path(s["impl"]).name, s["passed"]) for s in document["submissions"]] == [("alice.py", True), ("bob.py", False)]
    suites = ET.parse(report).getroot().findall("testsuite")
    assert [Path(s.get("name")).name for s in suites] == ["alice.py", "bob.py"]


def test_text_summary_for_a_class(submissions):
    result = invoke("--impl", submissions, "-j", "1")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-1] == "1 of 3 submissions passed"
    assert lines[0].startswith("PASSED: ") and "alice.py" in lines[0]
    assert lines[2].startswith("ERROR: ") and "carol.py could not be checked" in lines[2]


def test_github_annotations_point_at_the_function(submissions):
    result = invoke("--impl", submissions / "bob.py", "--format", "github")
    assert result.exit_code == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::error ")]
    line = next(n for n, text in enumerate((submissions / "bob.py").read_text().splitlines(), 1) if "def dot_forward" in text)
    assert annotations and all(f",line={line},title=gradcheck dot_forward[" in a for a in annotations)
    assert result.stdout.splitlines()[-1].startswith("FAILED: ")


def test_memory_limit_turns_a_hog_into_a_failed_check():
    result = invoke("--impl", ATTACKS / "memory_hog.py", "--memory", "400M", "--format", "json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["dot_forward[3x3]"]["status"] == "fail" and "MemoryError" in checks["dot_forward[3x3]"]["message"]
    assert checks["dot_backward[3x3]:w"]["status"] == "pass"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--impl", "x.py", "-j", "0"], "Invalid value for '-j'"),
        (["--impl", "x.py", "--memory", "lots"], "Error: --memory must be a size like 4G, 512M or 1.5GiB, or none; got 'lots'"),
        (["--impl", "x.py", "--points", "p.toml"], "Error: --points is only used with --format gradescope"),
        (["--impl", "missing/"], "does not exist"),
    ],
)
def test_usage_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2 and message in result.output


def test_grader_options_need_impl():
    result = CliRunner().invoke(cli, ["gradcheck", "--format", "gradescope"])
    assert result.exit_code == 2 and "only used with --impl" in result.output
