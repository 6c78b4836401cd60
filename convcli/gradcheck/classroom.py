"""Grading a class: many submissions, N at a time, into one report.

- :func:`find_submissions` expands ``--impl`` arguments: a file is one
  submission; a folder gives each ``.py`` and ``.ipynb`` file directly in it
  (hidden files aside), in name order.
- :func:`grade_class` checks them ``jobs`` at a time.  Each check runs in a
  thread that drives its own sandboxed child process (the work happens in the
  children; the threads mostly wait), with :func:`convcli.gradcheck.sandbox.signal_guard`
  around the lot, so Ctrl-C or a SIGTERM ends every child.  ``progress`` is
  called with the number of submissions finished.
- :func:`class_junit` puts the submissions' JUnit reports into one
  ``<testsuites>``, a ``<testsuite>`` per submission named after its file;
  :func:`class_json` gives a ``submissions`` list with one summary line each,
  then the full report of each.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from convcli.errors import ImplementationError, ParameterError
from convcli.gradcheck.formats import json_text, xml_text
from convcli.gradcheck.reports import report_dict, summary_line, to_junit
from convcli.gradcheck.sandbox import signal_guard, terminate_all

SUFFIXES = (".py", ".ipynb")


def find_submissions(paths: "Iterable[str | os.PathLike]") -> "list[Path]":
    """The submission files ``paths`` name: files as given, folders expanded; each once, in order.

    Raises
    ------
    ImplementationError
        A path that does not exist, or a folder holding no ``.py`` or ``.ipynb`` file.
    """
    found: "dict[Path, None]" = {}
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
            if not files:
                raise ImplementationError(f"folder '{path}' holds no .py or .ipynb file to check")
            found.update(dict.fromkeys(files))
        elif path.exists() or path.is_symlink():
            found[path] = None
        else:
            raise ImplementationError(f"implementation file '{path}' does not exist; give a .py or .ipynb file or a folder of them")
    return list(found)


def default_jobs() -> int:
    """How many submissions to check at a time by default: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def grade_class(
    submissions: "list[Path]",
    check: "Callable[[Path], Any]",
    *,
    jobs: "int | None" = None,
    progress: "Callable[[int], None] | None" = None,
) -> "list[Any]":
    """``check(path)`` for every submission, ``jobs`` at a time; the results in ``submissions`` order.

    ``check`` returns one submission's report (it should turn a file that
    cannot be checked into a report saying so rather than raise).  On Ctrl-C or
    SIGTERM every child is killed and submissions not started are dropped.
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ParameterError(f"-j must be at least 1; got {jobs}")
    results: "dict[int, Any]" = {}
    lock = threading.Lock()
    with signal_guard():
        if jobs == 1 or len(submissions) <= 1:
            for index, path in enumerate(submissions):
                results[index] = check(path)
                if progress:
                    progress(len(results))
            return [results[i] for i in range(len(submissions))]
        executor = ThreadPoolExecutor(max_workers=min(jobs, len(submissions)), thread_name_prefix="gradcheck")
        try:
            futures = {executor.submit(check, path): index for index, path in enumerate(submissions)}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    with lock:
                        results[futures[future]] = future.result()
                    if progress:
                        progress(len(results))
        except BaseException:  # Ctrl-C, SIGTERM or a bug: end the children now rather than wait for them
            terminate_all()
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
    return [results[i] for i in range(len(submissions))]


def submission_report(
    path: Path,
    *,
    settings: Any,
    api: str = "auto",
    layers: "Iterable[str] | None" = None,
    limits: Any = None,
    version: str = "",
) -> Any:
    """Check one submission into a :class:`~convcli.gradcheck.reports.CheckReport`, whatever happens.

    A file that cannot be checked (syntax error, no convention's functions, a
    ``--layer`` its convention lacks...) gives a report with its ``error`` and
    the checks that ran, so the class report still has its line.
    """
    from convcli.errors import ConvcliError
    from convcli.gradcheck.impl import check_impl
    from convcli.gradcheck.reports import CheckReport

    started = time.perf_counter()
    report = CheckReport(
        checks=[],
        seed=settings.seed,
        settings=settings.report(impl=True),
        version=version,
        impl=str(path),
        timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
    )
    try:
        checked = check_impl(path, api=api, settings=settings, layers=layers, limits=limits)
        report.checks, report.convention, report.notes = checked.records, checked.convention, checked.notes
    except ConvcliError as exc:
        report.error = str(exc)
        report.checks = list(getattr(exc, "records", []))
        report.convention = getattr(exc, "convention", None)
        report.notes = list(getattr(exc, "notes", []))
    report.seconds = time.perf_counter() - started
    return report


# ----------------------------------------------------------------------------- one report for all


def class_junit(reports: "list[Any]") -> str:
    """One ``<testsuites>`` holding each submission's ``<testsuite>``, named after its file."""
    root = ET.Element("testsuites", {"name": "convcli"})
    totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seconds = 0.0
    for report in reports:
        safe = copy.copy(report)  # the file name goes into the classname too: make it XML-safe first
        safe.impl = None if report.impl is None else xml_text(report.impl)
        single = ET.fromstring(to_junit(safe).encode("utf-8"))
        for suite in single.iter("testsuite"):
            suite.set("name", xml_text(f"convcli.gradcheck.{report.target}"))
            for key in totals:
                totals[key] += int(suite.get(key, "0"))
            seconds += float(suite.get("time", "0"))
            root.append(suite)
    root.attrib.update({key: str(value) for key, value in totals.items()}, time=f"{seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def submission_summary(report: Any) -> "dict[str, Any]":
    """One submission in a line: its file, verdict, counts and summary (or why it could not be checked)."""
    error = getattr(report, "error", None)
    failed = sum(check.status == "fail" for check in report.checks)
    return {
        "impl": json_text(report.target),
        "passed": report.passed and not error,
        "summary": json_text(f"ERROR: {report.target} could not be checked: {error}" if error else summary_line(report)),
        "total": len(report.checks),
        "failed": failed,
        "error": json_text(error) if error else None,
    }


def class_json(reports: "list[Any]", *, version: str = "") -> str:
    """``{"passed", "submissions": [one summary each], "reports": [each full report]}``, strictly valid JSON."""
    summaries = [submission_summary(report) for report in reports]
    document = {
        "convcli_version": version,
        "passed": all(s["passed"] for s in summaries),
        "summary": {
            "submissions": len(summaries),
            "passed": sum(s["passed"] for s in summaries),
            "failed": sum(not s["passed"] for s in summaries),
        },
        "submissions": summaries,
        "reports": [json.loads(json.dumps(report_dict(report), allow_nan=False)) for report in reports],
    }
    return json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return json_text(value)
    if isinstance(value, dict):
        return {json_text(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value
