"""Checker reports as text rows, JSON and JUnit XML (no click, no rich).

A gradcheck run produces one :class:`CheckRecord` per check (``dot_forward``,
``conv_backward:X``, ``conv_backward[padding=same,stride=1]:w``...).  A
:class:`CheckReport` holds them with the settings they ran under, and the
functions below render it:

- :func:`table_rows` and :func:`summary_line`: the cells of the text table
  (the command line draws them with rich) and the one-line verdict;
- :func:`to_json`: the document ``--format json`` prints;
- :func:`to_junit`: JUnit XML, one ``<testcase>`` per check, for CI systems.

Records are plain data (:meth:`CheckRecord.to_dict` / :meth:`CheckRecord.from_dict`),
so a child process can send them back as JSON.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: What a check can come to.  A skipped check (its function is absent) counts as passed.
STATUSES = ("pass", "fail", "skip")

#: Column headings of the text table, in the order of :func:`table_rows`' cells.  The three number
#: columns describe one element, the worst: see :data:`WORST_MEANS`.
TABLE_COLUMNS = ("check", "result", "abs err", "rel err", "worst index", "message")

#: What the table's "worst" element is, for ``--help`` and docs.
WORST_MEANS = (
    "Each row shows one element of the compared arrays, the worst: the one furthest outside "
    "tolerance, i.e. with the largest |a - n| / (atol + rtol * |n|) (a non-finite value first), where n is "
    "the reference (numerical gradient, or expected output) and a the value checked. 'abs err' is |a - n| "
    "and 'rel err' is |a - n| / max(|a|, |n|) at that element, whose index is 'worst index' (in --mode fast, "
    "the direction number); the message quotes the same element."
)


@dataclass
class CheckRecord:
    """The verdict on one check.

    ``kind`` is ``"forward"`` (an output compared with a reference; ``input`` is
    None and ``expected``/``actual`` hold the worst element) or ``"backward"``
    (a gradient compared with finite differences; ``numerical``/``analytical``
    hold the worst element).  ``crashed`` marks a failure where the code did not
    return at all (it raised, timed out or ended the process): JUnit reports it
    as an ``<error>`` rather than a ``<failure>``.
    """

    name: str
    function: str
    kind: str
    status: str
    message: str = ""
    input: "str | None" = None
    max_abs_error: "float | None" = None
    max_rel_error: "float | None" = None
    worst_index: "list[int] | None" = None
    numerical: "float | None" = None
    analytical: "float | None" = None
    expected: "float | None" = None
    actual: "float | None" = None
    crashed: bool = False
    seconds: float = 0.0
    case: "str | None" = None
    convention: "str | None" = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}; got {self.status!r}")
        if self.worst_index is not None:
            self.worst_index = [int(i) for i in self.worst_index]

    @property
    def passed(self) -> bool:
        """True for a passed or skipped check."""
        return self.status != "fail"

    def to_dict(self) -> "dict[str, Any]":
        """Plain data (JSON-safe except for non-finite floats, see :func:`to_json`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: "dict[str, Any]") -> "CheckRecord":
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclass
class CheckReport:
    """Every check of one run and what it ran under.

    ``impl`` is the implementation file's path (None for the self-check);
    ``settings`` holds eps/atol/rtol/mode (and, for a file, size, kernel_size
    and timeout).  ``error`` says why a file could not be checked (the run
    then failed whatever ``checks`` holds: the checks that ran before);
    ``convention`` is the one used, ``notes`` what happened while loading.
    """

    checks: "list[CheckRecord]"
    seed: int
    settings: "dict[str, Any]"
    version: str = ""
    impl: "str | None" = None
    seconds: float = 0.0
    timestamp: "str | None" = None
    error: "str | None" = None
    convention: "str | None" = None
    notes: "list[str]" = field(default_factory=list)

    @property
    def target(self) -> str:
        """What was checked: the implementation file, or ``"convcli"`` for the self-check."""
        return "convcli" if self.impl is None else self.impl

    @property
    def passed(self) -> bool:
        return self.error is None and all(check.passed for check in self.checks)

    def count(self, status: str) -> int:
        return sum(check.status == status for check in self.checks)

    @property
    def crashed(self) -> int:
        return sum(check.status == "fail" and check.crashed for check in self.checks)


# ----------------------------------------------------------------------------- text


def format_error(value: "float | None") -> str:
    """An error size for the table: ``3.2e-07``, or ``-`` when there is none."""
    if value is None:
        return "-"
    return f"{value:.1e}" if math.isfinite(value) else str(value)


def format_index(index: "list[int] | None") -> str:
    return "-" if index is None else "[" + ", ".join(str(i) for i in index) + "]"


def worst_errors(check: CheckRecord) -> "tuple[float | None, float | None]":
    """``(abs, rel)`` error of the check's worst element: ``|a - n|`` and ``|a - n| / max(|a|, |n|)``.

    ``n, a`` are ``numerical, analytical`` for a backward check and ``expected,
    actual`` for a forward one: the element ``worst_index`` names and the message
    quotes.  ``(None, None)`` when the record holds no such element (a crash).
    """
    pair = (check.numerical, check.analytical) if check.kind == "backward" else (check.expected, check.actual)
    if pair[0] is None or pair[1] is None:
        return None, None
    reference, value = float(pair[0]), float(pair[1])
    abs_err = abs(value - reference)
    if math.isnan(abs_err):
        return math.nan, math.nan
    scale = max(abs(value), abs(reference))
    rel_err = abs_err / scale if scale > 0 and math.isfinite(scale) else (0.0 if abs_err == 0 else math.inf)
    return abs_err, rel_err


def table_rows(report: CheckReport) -> "list[tuple[str, str, str, str, str, str]]":
    """One row of cells per check, in :data:`TABLE_COLUMNS` order.

    The three number cells belong to one element, the worst (:data:`WORST_MEANS`),
    so they agree with the message.  The row already names the check, so a
    message's leading ``"conv_backward: "`` is left out.
    """
    return [
        (
            check.name,
            check.status.upper(),
            *(format_error(value) for value in worst_errors(check)),
            format_index(check.worst_index),
            check.message.removeprefix(f"{check.name}: ").removeprefix(f"{check.function}: "),
        )
        for check in report.checks
    ]


def summary_line(report: CheckReport) -> str:
    """``"FAILED: 6 checks of lab.py: 3 passed, 3 failed (1 crashed), 0 skipped (seed 0)"``."""
    total = len(report.checks)
    failed = report.count("fail")
    crashed = f" ({report.crashed} crashed)" if report.crashed else ""
    verdict = "PASSED" if report.passed else "FAILED"
    if report.error is not None:
        return f"NOT CHECKED: {report.target}: {report.error}"
    return (
        f"{verdict}: {total} check{'s' if total != 1 else ''} of {report.target}: "
        f"{report.count('pass')} passed, {failed} failed{crashed}, {report.count('skip')} skipped "
        f"(seed {report.seed})"
    )


# ----------------------------------------------------------------------------- JSON


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN or infinity: they become null (the message still says what happened)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_dict(report: CheckReport) -> "dict[str, Any]":
    """The JSON document as Python data."""
    checks = []
    for check in report.checks:
        data = {key: _finite_or_none(value) for key, value in check.to_dict().items()}
        data["passed"] = check.passed
        checks.append(data)
    return {
        "convcli_version": report.version,
        "passed": report.passed,
        "seed": report.seed,
        "target": report.target,
        "impl": report.impl,
        "convention": report.convention,
        "error": report.error,
        "notes": list(report.notes),
        "settings": dict(report.settings),
        "summary": {
            "total": len(report.checks),
            "passed": report.count("pass"),
            "failed": report.count("fail"),
            "skipped": report.count("skip"),
        },
        "checks": checks,
    }


def to_json(report: CheckReport) -> str:
    """The JSON report, strictly valid (no NaN), ending in a newline."""
    return json.dumps(report_dict(report), indent=2, allow_nan=False) + "\n"


# ----------------------------------------------------------------------------- JUnit XML

# XML 1.0 forbids most control characters, and an exception message from user code may hold them.
_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _details(check: CheckRecord) -> str:
    """The body of a ``<failure>``: the message and every number, one per line."""
    lines = [check.message]
    for key in ("case", "convention"):
        if getattr(check, key):
            lines.append(f"{key}: {getattr(check, key)}")
    for key in ("max_abs_error", "max_rel_error", "worst_index", "numerical", "analytical", "expected", "actual"):
        value = getattr(check, key)
        if value is not None:
            lines.append(f"{key}: {value}")
    return _xml_text("\n".join(lines))


def to_junit(report: CheckReport, *, suite: str = "convcli.gradcheck") -> str:
    """JUnit XML: ``<testsuites>`` holding one ``<testsuite name="convcli.gradcheck">``.

    Each check is a ``<testcase classname="convcli.gradcheck.<target stem>"
    name="<check name>">``; a wrong result carries ``<failure message=...>``, a
    crash (exception, timeout, dead process) ``<error message=...>``, and an
    absent function ``<skipped/>``.  This is the shape Jenkins, GitLab, GitHub
    Actions reporters and pytest's ``--junitxml`` share.
    """
    classname = _xml_text(f"{suite}.{_stem(report.target)}")
    failures = sum(c.status == "fail" and not c.crashed for c in report.checks)
    load_error = report.error is not None
    counts = {
        "tests": str(len(report.checks) + load_error),
        "failures": str(failures),
        "errors": str(report.crashed + load_error),
        "skipped": str(report.count("skip")),
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": "convcli", **counts})
    attributes = {"name": suite, **counts}
    if report.timestamp:
        attributes["timestamp"] = report.timestamp
    testsuite = ET.SubElement(root, "testsuite", attributes)
    properties = ET.SubElement(testsuite, "properties")
    values = {"convcli_version": report.version, "seed": report.seed, "target": report.target, **report.settings}
    if report.convention:
        values["convention"] = report.convention
    for key, value in values.items():
        ET.SubElement(properties, "property", {"name": key, "value": _xml_text(str(value))})
    if load_error:
        case = ET.SubElement(testsuite, "testcase", {"classname": classname, "name": "load", "time": "0.000"})
        element = ET.SubElement(case, "error", {"message": _xml_text(report.error), "type": "LoadError"})
        element.text = _xml_text("\n".join([report.error, *report.notes]))
    for check in report.checks:
        case = ET.SubElement(
            testsuite,
            "testcase",
            {"classname": classname, "name": _xml_text(check.name), "time": f"{check.seconds:.3f}"},
        )
        if check.status == "skip":
            ET.SubElement(case, "skipped", {"message": _xml_text(check.message)})
        elif check.status == "fail":
            tag, kind = ("error", "Crash") if check.crashed else ("failure", "WrongResult")
            element = ET.SubElement(case, tag, {"message": _xml_text(check.message), "type": kind})
            element.text = _details(check)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _stem(target: str) -> str:
    """``"course/hw1/lab.py"`` -> ``"lab"``; dots would read as packages in a classname."""
    name = re.split(r"[\\/]", target)[-1]
    stem = re.sub(r"\.(py|ipynb)$", "", name)
    return stem.replace(".", "_") or "convcli"
