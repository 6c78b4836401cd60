"""``convcli gradcheck`` for a class: several ``--impl`` or a folder of submissions, one report for all.

:func:`run_class` finds the submissions, checks them ``-j`` at a time
(:func:`convcli.gradcheck.classroom.grade_class`) with a progress bar on a
terminal, and prints one document for the class: a summary line per
submission (text), a ``submissions`` list (json), a ``<testsuite>`` per
submission (junit), Gradescope's ``results.json`` or GitHub annotations.
Exit status 1 when any submission failed or could not be checked.
"""

from __future__ import annotations

import functools

import click

from convcli import __version__
from convcli.cli.common import progress_enabled, stderr_console, stdout_console

CLASS_REPORT_SUFFIXES = {".json": "json", ".xml": "junit"}


def is_class(impl: "tuple[str, ...]") -> bool:
    """Several ``--impl``, or one naming a folder: the class form of the command."""
    import os

    return len(impl) > 1 or any(os.path.isdir(path) for path in impl)


def render(fmt: str, reports: list, points) -> str:
    from convcli.gradcheck.classroom import class_json, class_junit
    from convcli.gradcheck.formats import to_github, to_gradescope

    if fmt == "json":
        return class_json(reports, version=__version__)
    if fmt == "junit":
        return class_junit(reports)
    if fmt == "gradescope":
        return to_gradescope(reports, points=points)
    return to_github(reports)


def run_class(impl, *, check, jobs, fmt, points, report, report_format, force, quiet) -> bool:
    """Grade every submission ``impl`` names with ``check(path) -> CheckReport``; True if all passed."""
    from convcli.gradcheck.classroom import find_submissions, grade_class
    from convcli.io.files import atomic_write_bytes

    submissions = find_submissions(impl)
    if progress_enabled(quiet):
        from rich.progress import Progress

        with Progress(console=stderr_console(), transient=True) as bar:
            task = bar.add_task(f"grading {len(submissions)} submissions", total=len(submissions))
            reports = grade_class(submissions, check, jobs=jobs, progress=lambda done: bar.update(task, completed=done))
    else:
        reports = grade_class(submissions, check, jobs=jobs)
    if fmt == "text":
        _print_summaries(reports)
    else:
        click.echo(render(fmt, reports, points), nl=False)
    if report is not None:
        atomic_write_bytes(report, render(report_format, reports, points).encode("utf-8"), force=force)
    return all(r.passed for r in reports)


def _print_summaries(reports) -> None:
    from rich.text import Text

    from convcli.gradcheck.classroom import submission_summary
    from convcli.gradcheck.sanitize import clean_text

    console = stdout_console()
    for report in reports:
        summary = submission_summary(report)
        console.print(Text(clean_text(summary["summary"]), style="green" if summary["passed"] else "red"), soft_wrap=True)
    passed = sum(r.passed for r in reports)
    style = "bold green" if passed == len(reports) else "bold red"
    console.print(Text(f"{passed} of {len(reports)} submissions passed", style=style))


def submission_checker(*, api, settings, layers, limits=None):
    """``check(path)``: one submission's report, never raising for a file that cannot be checked."""
    from convcli.gradcheck.classroom import submission_report

    return functools.partial(
        submission_report, settings=settings, api=api, layers=layers, limits=limits, version=__version__
    )
