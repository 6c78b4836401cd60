"""Grader outputs: Gradescope's ``results.json`` and GitHub Actions annotations, safe whatever a student wrote.

- :func:`to_gradescope` writes the autograder results Gradescope reads: one
  ``tests`` entry per checked function (``name``, ``score``, ``max_score``,
  ``status``, ``output``), all or nothing per function, weighted by
  :func:`load_points` (one point each by default).  A function the file does
  not define scores 0.
- :func:`to_github` prints one ``::error file=...,line=...,title=...::...``
  workflow command per failed check, pointing at the line of the student's
  function when the report knows it, so the failure shows in the pull
  request's diff; then one plain summary line per submission.
- :func:`json_text` and :func:`xml_text` make a name or message from a student
  file (or the file's own name) safe to put in JSON and XML 1.0: lone
  surrogates (a file name that is not UTF-8) and characters XML cannot hold
  (``\\x01``) become visible escapes, so the document stays well-formed.

Reports are :class:`~convcli.gradcheck.reports.CheckReport` objects, one per
submission.  A report with an ``error`` (a file that could not be checked)
scores 0 on every function the others were graded on.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from convcli.errors import ParameterError
from convcli.gradcheck.sanitize import clean_text

# ----------------------------------------------------------------------------- safe text

_NOT_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def json_text(text: str) -> str:
    """``text`` without lone surrogates (from undecodable file names), which strict JSON readers reject."""
    return _SURROGATES.sub(_escape, str(text))


def xml_text(text: str) -> str:
    """``text`` with every character XML 1.0 cannot hold written as ``\\x01`` (or ``\\udcff``)."""
    return _NOT_XML.sub(_escape, str(text))


def _escape(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_path(path: str) -> str:
    """``path`` relative to the working folder when it lies below it (as GitHub wants), else as given."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if relative.startswith("..") else relative


# ----------------------------------------------------------------------------- points


def load_points(path: "str | os.PathLike") -> "dict[str, float]":
    """Points per function from a TOML file: ``conv_forward = 2`` lines, at the top or under ``[points]``."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10 has no TOML reader
        raise ParameterError("--points needs Python 3.11 or later (it reads TOML with tomllib)") from None
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ParameterError(f"points file '{path}' cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ParameterError(f"points file '{path}' is not valid TOML: {exc}") from None
    table = data.get("points", data) if set(data) <= {"points"} else data
    if not isinstance(table, dict) or not table:
        raise ParameterError(f"points file '{path}' names no function; write lines like: conv_forward = 2")
    points = {}
    for name, value in table.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ParameterError(
                f"points file '{path}': {name} = {value!r}; expected a number of points >= 0 (e.g. {name} = 2)"
            )
        points[name] = float(value)
    return points


# ----------------------------------------------------------------------------- scores


@dataclass
class FunctionScore:
    """All or nothing: ``score`` is ``max_score`` when every check of ``function`` passed, else 0."""

    function: str
    max_score: float
    checks: "list[Any]" = field(default_factory=list)
    reason: str = ""  # why there are no checks (a file that could not be checked)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.status == "pass" for check in self.checks)

    @property
    def score(self) -> float:
        return self.max_score if self.passed else 0.0

    def output(self) -> str:
        if not self.checks:
            return self.reason
        lines = []
        for check in self.checks:
            status = "not defined" if check.status == "skip" else check.status.upper()
            lines.append(f"{status}  {check.name}: {check.message.removeprefix(check.function + ': ')}")
        return "\n".join(lines)


def graded_functions(reports: "Iterable[Any]", points: "dict[str, float] | None") -> "list[str]":
    """The functions every submission is graded on: those of the points file, else those any report checked."""
    seen = list(dict.fromkeys(check.function for report in reports for check in report.checks))
    if not points:
        return seen
    unknown = [name for name in points if seen and name not in seen]
    if unknown:
        raise ParameterError(
            f"--points names {', '.join(repr(n) for n in unknown)}, which no submission was checked on; "
            f"the checked functions are {', '.join(seen)}"
        )
    return list(points) + [name for name in seen if name not in points]


def function_scores(report: Any, functions: "list[str]", points: "dict[str, float] | None") -> "list[FunctionScore]":
    """One :class:`FunctionScore` per function, in ``functions`` order (1 point unless ``points`` says)."""
    points = points or {}
    error = getattr(report, "error", None)
    scores = []
    for function in functions:
        checks = [check for check in report.checks if check.function == function]
        reason = f"not checked: {error}" if error else f"{function} was not checked"
        scores.append(FunctionScore(function, points.get(function, 1.0), checks, reason))
    if not functions:  # nothing was checked anywhere: the load itself is what failed
        scores.append(FunctionScore("load", 1.0, [], f"not checked: {error}" if error else "nothing was checked"))
    return scores


# ----------------------------------------------------------------------------- Gradescope


def gradescope_results(reports: "list[Any]", *, points: "dict[str, float] | None" = None) -> "dict[str, Any]":
    """Gradescope's ``results.json`` as data.  Several submissions: test names start with the file's name."""
    functions = graded_functions(reports, points)
    tests, total, seconds, summaries = [], 0.0, 0.0, []
    for report in reports:
        prefix = f"{os.path.basename(report.target)}: " if len(reports) > 1 else ""
        for number, score in enumerate(function_scores(report, functions, points), 1):
            tests.append(
                {
                    "name": json_text(clean_text(prefix + score.function)),
                    "score": score.score,
                    "max_score": score.max_score,
                    "status": "passed" if score.passed else "failed",
                    "output": json_text(clean_multiline(score.output())),
                }
            )
            total += score.score
        seconds += report.seconds
        summaries.append(_summary(report))
    return {
        "score": total,
        "execution_time": round(seconds, 3),
        "output": json_text(clean_multiline("\n".join(summaries))),
        "tests": tests,
    }


def to_gradescope(reports: "list[Any]", *, points: "dict[str, float] | None" = None) -> str:
    return json.dumps(gradescope_results(reports, points=points), indent=2, allow_nan=False) + "\n"


def _summary(report: Any) -> str:
    from convcli.gradcheck.reports import summary_line

    error = getattr(report, "error", None)
    return f"ERROR: {report.target} could not be checked: {error}" if error else summary_line(report)


def clean_multiline(text: str) -> str:
    """Each line of ``text`` cleaned of escape sequences and control characters; the newlines kept."""
    return "\n".join(clean_text(line) for line in str(text).split("\n"))


# ----------------------------------------------------------------------------- GitHub Actions


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit does (``%``, CR, LF)."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value: :func:`escape_data`, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(path: str, title: str, message: str, line: "int | None" = None) -> str:
    """``::error file=lab.py,line=12,title=conv_forward::wrong at [0, 1] ...`` (student text cleaned first)."""
    properties = [f"file={escape_property(clean_text(display_path(path)))}"]
    if line is not None and int(line) > 0:
        properties.append(f"line={int(line)}")
    properties.append(f"title={escape_property(clean_text(title))}")
    return f"::error {','.join(properties)}::{escape_data(clean_multiline(message))}"


def github_annotations(reports: "list[Any]") -> "list[str]":
    """One annotation per failed check (or per file that could not be checked)."""
    lines = []
    for report in reports:
        error = getattr(report, "error", None)
        if error:
            lines.append(annotation(report.target, "gradcheck: cannot be checked", error, getattr(report, "line", None)))
        found = function_lines(report.impl) if report.impl is not None else {}
        for check in report.checks:
            if check.status == "fail":
                where = line_of(report, check, found)
                lines.append(annotation(report.target, f"gradcheck {check.name}", check.message, where))
    return lines


def line_of(report: Any, check: Any, lines: "dict[str, int] | None" = None) -> "int | None":
    """The line of the student's function a check is about: given, or found in the file (never run)."""
    line = getattr(check, "line", None) or (getattr(report, "lines", None) or {}).get(check.function)
    if line is None and report.impl is not None:
        found = function_lines(report.impl) if lines is None else lines
        line = found.get(check.function) or found.get(check.function.rpartition(".")[2])
    return line


def function_lines(path: "str | os.PathLike") -> "dict[str, int]":
    """Where each function is defined in a ``.py`` file (also ``Class.method``), read with :mod:`ast`.

    For a notebook (or a file :mod:`ast` cannot parse) the first line of the
    raw file holding ``def name(``: in an ``.ipynb`` that is the line of the
    JSON the pull request's diff shows.  Nothing of the file is run.
    """
    try:
        with open(path, "rb") as handle:
            raw = handle.read(20 * 2**20).decode("utf-8", "replace")
    except OSError:
        return {}
    lines: "dict[str, int]" = {}
    try:
        if str(path).lower().endswith(".ipynb"):
            raise SyntaxError("a notebook is JSON")
        tree = ast.parse(raw)
    except (SyntaxError, ValueError):
        for number, text in enumerate(raw.splitlines(), 1):
            match = _DEF.match(text)
            if match:
                lines.setdefault(match.group(1), number)
        return lines
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines.setdefault(node.name, node.lineno)
        elif isinstance(node, ast.ClassDef):
            lines.setdefault(node.name, node.lineno)
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines.setdefault(f"{node.name}.{item.name}", item.lineno)
    return lines


_DEF = re.compile(r'\s*"?\s*(?:async\s+)?def\s+([A-Za-z_]\w*)\s*\(')


def to_github(reports: "list[Any]") -> str:
    """The annotations, then one summary line per submission (never starting with ``::``)."""
    summaries = [clean_text(_summary(report)) for report in reports]
    return "".join(line + "\n" for line in github_annotations(reports) + summaries)
