"""Reports: the text rows, the JSON document and the JUnit XML a CI system reads."""

import json
import math
import xml.etree.ElementTree as ET

import pytest

from convcli.gradcheck.reports import (
    TABLE_COLUMNS,
    CheckRecord,
    CheckReport,
    report_dict,
    summary_line,
    table_rows,
    to_json,
    to_junit,
    worst_errors,
)


def make_report(impl="course/hw1/lab.py"):
    checks = [
        CheckRecord(
            "dot_forward",
            "dot_forward",
            "forward",
            "pass",
            "dot_forward: matches sum(x * w)",
            max_abs_error=0.0,
            max_rel_error=0.0,
            expected=1.5,
            actual=1.5,
            seconds=0.01,
        ),
        CheckRecord(
            "conv_backward:w",
            "conv_backward",
            "backward",
            "fail",
            "conv_backward: gradient for 'w' wrong at [0, 2]: numerical 3.1416, analytical 1.0000 (rel. error 6.8e-01)",
            input="w",
            max_abs_error=2.1416,
            max_rel_error=0.68,
            worst_index=(0, 2),
            numerical=3.1416,
            analytical=1.0,
            seconds=0.02,
        ),
        CheckRecord(
            "dot_backward:x",
            "dot_backward",
            "backward",
            "fail",
            "dot_backward did not finish within 60 s (its process was stopped)",
            input="x",
            crashed=True,
        ),
        CheckRecord("conv_forward", "conv_forward", "forward", "skip", "lab.py defines no conv_forward"),
        CheckRecord(
            "conv_backward:X",
            "conv_backward",
            "backward",
            "fail",
            "conv_backward: gradient for 'X' is not finite at [1, 1]: numerical 0.5000, analytical nan",
            input="X",
            max_abs_error=math.nan,
            max_rel_error=math.nan,
            worst_index=[1, 1],
            numerical=0.5,
            analytical=math.nan,
        ),
    ]
    return CheckReport(
        checks=checks,
        seed=7,
        settings={"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "mode": "full"},
        version="9.9",
        impl=impl,
        seconds=1.25,
        timestamp="2024-01-02T03:04:05",
    )


def test_record_statuses_and_passed():
    report = make_report()
    assert [c.passed for c in report.checks] == [True, False, False, True, False]
    assert not report.passed
    assert (report.count("pass"), report.count("fail"), report.count("skip"), report.crashed) == (1, 3, 1, 1)
    with pytest.raises(ValueError, match="status must be one of pass, fail, skip; got 'ok'"):
        CheckRecord("x", "f", "forward", "ok")


def test_record_round_trips_as_plain_data():
    record = make_report().checks[1]
    data = json.loads(json.dumps(record.to_dict()))
    assert CheckRecord.from_dict({**data, "unknown": 1}) == record
    assert data["worst_index"] == [0, 2]


def test_json_document_fields():
    document = json.loads(to_json(make_report()))
    assert document["convcli_version"] == "9.9"
    assert document["target"] == document["impl"] == "course/hw1/lab.py"
    assert document["passed"] is False
    assert document["seed"] == 7
    assert document["settings"] == {"eps": 1e-6, "atol": 1e-5, "rtol": 1e-3, "mode": "full"}
    assert document["summary"] == {"total": 5, "passed": 1, "failed": 3, "skipped": 1}
    forward, wrong, hung, skipped, nan = document["checks"]
    assert forward["input"] is None and forward["kind"] == "forward" and forward["status"] == "pass"
    assert wrong == {
        **wrong,
        "name": "conv_backward:w",
        "function": "conv_backward",
        "input": "w",
        "kind": "backward",
        "status": "fail",
        "passed": False,
        "worst_index": [0, 2],
        "numerical": 3.1416,
        "analytical": 1.0,
    }
    assert hung["crashed"] is True and hung["passed"] is False
    assert skipped["status"] == "skip" and skipped["passed"] is True


def test_json_is_strict_no_nan():
    text = to_json(make_report())

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    document = json.loads(text, parse_constant=refuse)
    nan = document["checks"][4]
    assert nan["max_abs_error"] is None and nan["analytical"] is None
    assert nan["numerical"] == 0.5


def test_json_of_all_passed_report():
    report = make_report()
    report.checks = [report.checks[0], report.checks[3]]
    assert report_dict(report)["passed"] is True


def test_junit_structure():
    root = ET.fromstring(to_junit(make_report()))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "convcli.gradcheck"
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "5",
        "failures": "2",
        "errors": "1",
        "skipped": "1",
    }
    assert suite.get("timestamp") == "2024-01-02T03:04:05"
    properties = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert properties["seed"] == "7" and properties["mode"] == "full"
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["convcli.gradcheck.lab"] * 5
    assert [c.get("name") for c in cases] == [
        "dot_forward",
        "conv_backward:w",
        "dot_backward:x",
        "conv_forward",
        "conv_backward:X",
    ]
    assert list(cases[0]) == []
    failure = cases[1].find("failure")
    assert failure.get("message").startswith("conv_backward: gradient for 'w' wrong at [0, 2]: numerical 3.1416")
    assert "max_abs_error: 2.1416" in failure.text and "worst_index: [0, 2]" in failure.text
    assert cases[2].find("error").get("message") == "dot_backward did not finish within 60 s (its process was stopped)"
    assert cases[2].find("failure") is None
    assert cases[3].find("skipped") is not None
    assert cases[4].find("failure") is not None


def test_junit_classname_for_the_self_check():
    root = ET.fromstring(to_junit(make_report(impl=None)))
    assert {c.get("classname") for c in root.iter("testcase")} == {"convcli.gradcheck.convcli"}
    assert report_dict(make_report(impl=None))["target"] == "convcli"


def test_junit_survives_control_characters_in_user_messages():
    report = make_report()
    report.checks[2].message = "dot_backward raised ValueError: bad \x00 byte \x1b[31m"
    root = ET.fromstring(to_junit(report))
    message = root.find("testsuite").findall("testcase")[2].find("error").get("message")
    assert message == "dot_backward raised ValueError: bad \ufffd byte \ufffd[31m"


def test_table_rows_and_summary():
    report = make_report()
    rows = table_rows(report)
    assert len(rows[0]) == len(TABLE_COLUMNS)
    assert rows[0][:5] == ("dot_forward", "PASS", "0.0e+00", "0.0e+00", "-")
    assert rows[1][:5] == ("conv_backward:w", "FAIL", "2.1e+00", "6.8e-01", "[0, 2]")
    assert rows[2][:5] == ("dot_backward:x", "FAIL", "-", "-", "-")
    assert rows[3][1] == "SKIP"
    # the row names the check, so the message drops its "function: " lead; other messages stay whole
    assert rows[1][5] == "gradient for 'w' wrong at [0, 2]: numerical 3.1416, analytical 1.0000 (rel. error 6.8e-01)"
    assert rows[2][5] == "dot_backward did not finish within 60 s (its process was stopped)"
    assert rows[4][2] == "nan"
    assert (
        summary_line(report)
        == "FAILED: 5 checks of course/hw1/lab.py: 1 passed, 3 failed (1 crashed), 1 skipped (seed 7)"
    )
    report.checks = report.checks[:1]
    assert summary_line(report) == "PASSED: 1 check of course/hw1/lab.py: 1 passed, 0 failed, 0 skipped (seed 7)"


def test_table_numbers_belong_to_the_worst_element():
    # The checker's maxima can come from other elements than the worst one (largest error relative to its
    # tolerance); the row shows the worst element's own errors, as the message does.
    record = CheckRecord(
        "conv_backward:X", "conv_backward", "backward", "fail",
        "conv_backward: gradient for 'X' wrong at [3, 1]: numerical 0.1000, analytical 6.0000 (rel. error 9.8e-01)",
        input="X", max_abs_error=23.0, max_rel_error=1.7, worst_index=[3, 1], numerical=0.1, analytical=6.0,
    )
    report = CheckReport(checks=[record], seed=0, settings={})
    (row,) = table_rows(report)
    assert row[2:5] == ("5.9e+00", "9.8e-01", "[3, 1]")
    assert worst_errors(record) == (pytest.approx(5.9), pytest.approx(5.9 / 6.0))
    forward = CheckRecord("dot_forward", "dot_forward", "forward", "fail", "m", max_abs_error=9.0,
                          worst_index=[0], expected=-2.0, actual=2.0)
    assert worst_errors(forward) == (4.0, 2.0)
    assert worst_errors(CheckRecord("x", "x", "backward", "fail", "crash", crashed=True)) == (None, None)
