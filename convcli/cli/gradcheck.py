"""``convcli gradcheck``: gradient-check convcli's layers, or the layers in a student's file or notebook.

The command parses its options, runs :func:`convcli.gradcheck.selfcheck.check_convcli` or
:func:`convcli.gradcheck.impl.check_impl`, and presents the records as a rich table,
JSON or JUnit XML (rendered by :mod:`convcli.gradcheck.reports`).  Exit status: 0 when
every check passed or was skipped, 1 when one failed, 2 for a usage error.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timezone

import click

from convcli import __version__
from convcli.errors import ConvcliError
from convcli.cli.common import CliError, handle_errors, progress_enabled, stderr_console, stdout_console

FORMATS = ("text", "json", "junit", "gradescope", "github")
REPORT_SUFFIXES = {".json": "json", ".xml": "junit"}
STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
#: The console width of the table in a CI log or a pipe, where nothing should wrap.
UNWRAPPED_WIDTH = 10_000


@click.command("gradcheck")
@click.option(
    "--impl",
    "impl",
    multiple=True,
    metavar="FILE|FOLDER",
    help="Check the functions in this .py file or .ipynb notebook instead of convcli's layers. "
    "Repeatable; a folder means each .py/.ipynb file in it: a class, graded into one report.",
)
@click.option(
    "--api",
    default="auto",
    show_default=True,
    metavar="NAME|FILE.py",
    help="With --impl: how to call the file's functions: lab, cs231n, dlai, holberton, or an adapter FILE.py.",
)
@click.option(
    "--layer",
    "layers",
    type=click.Choice(["dot", "affine", "conv", "pool"]),
    multiple=True,
    help="Only these layers (repeatable). Default: all the convention has.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the random inputs and upstream gradients.",
)
@click.option(
    "--eps",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-6,
    show_default=True,
    help="Finite-difference step.",
)
@click.option("--atol", type=click.FloatRange(min=0), default=1e-5, show_default=True, help="Absolute tolerance.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Relative tolerance.")
@click.option(
    "--mode",
    type=click.Choice(["full", "fast"]),
    default="full",
    show_default=True,
    help="Finite differences: full: every element; fast: a few random directions.",
)
@click.option(
    "--size", default=None, metavar="HxW", help="With --impl: one case by hand, images H x W (N means N x N)."
)
@click.option(
    "--kernel-size", default=None, metavar="FhxFw", help="With --impl: one case by hand, kernels Fh x Fw (F means F x F)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --impl: seconds each call (and loading the file) may take.  [default: 60]",
)
@click.option(
    "--memory",
    default=None,
    metavar="SIZE",
    help="With --impl: address space the checked code may use (e.g. 2G, 512M, none).  [default: 4G]",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="With several submissions: check N at a time.  [default: the CPUs]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="What goes to stdout; gradescope: Gradescope's results.json; github: GitHub Actions annotations.",
)
@click.option(
    "--points",
    metavar="FILE.toml",
    help="With --format gradescope: points per function (lines like conv_forward = 2).  [default: 1 each]",
)
@click.option("--report", metavar="FILE", help="Also write a JSON (.json) or JUnit XML (.xml) report to FILE.")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def gradcheck(
    impl, api, layers, seed, eps, atol, rtol, mode, size, kernel_size, timeout, memory, jobs, fmt, points, report, force,
    quiet,
):
    """Gradient-check convcli's layers, or the layers in a student's FILE.py or FILE.ipynb.

    Without --impl, convcli checks its own layers (Dot, Conv with channels,
    bias, dilation and groups, pooling, affine) over a spread of
    configurations.  With --impl, it loads the file in a child process, calls
    its functions as its course's convention says (--api; auto picks it from
    the names), and compares every output and gradient with convcli's own,
    on a set of cases with honest shapes (or one case: --size/--kernel-size).

    Exit status: 0 all passed (or skipped), 1 a check failed, 2 the file
    could not be checked (a report is still written) or a usage error.

    The table's number columns describe one element per check, the worst:
    the one furthest outside tolerance, with the largest
    |a - n| / (atol + rtol*|n|) (a non-finite value first), where n is the
    reference (numerical gradient or expected output) and a the value checked.
    'abs err' is |a - n| and 'rel err' is |a - n| / max(|a|, |n|) at that
    element, 'worst index' is where it is (in --mode fast, the direction
    number), and the message quotes the same element.

    \b
    Examples:
      convcli gradcheck
      convcli gradcheck --impl lab.py
      convcli gradcheck --impl lab.ipynb --layer conv --size 7x9 --kernel-size 3
      convcli gradcheck --impl layers.py --api cs231n --format json > verdict.json
      convcli gradcheck --impl student.py --api course_adapter.py --report results.xml
      convcli gradcheck --impl submissions/ -j 4 --report class.xml
      convcli gradcheck --impl submissions/ --format gradescope --points points.toml > results.json
      convcli gradcheck --impl student.py --format github
    """
    from convcli.gradcheck.settings import CheckSettings
    from convcli.io.files import check_writable

    file_options = {"size": size, "kernel_size": kernel_size, "timeout": timeout}
    given = {name: value for name, value in file_options.items() if value is not None}
    grader_options = {"--api": api != "auto", "--memory": memory, "-j": jobs, "--points": points}
    grader_options[f"--format {fmt}"] = fmt in ("gradescope", "github")
    if not impl and (given or any(v not in (None, False) for v in grader_options.values())):
        flags = ["--" + name.replace("_", "-") for name in given]
        flags += [flag for flag, value in grader_options.items() if value not in (None, False)]
        raise CliError(
            f"{' and '.join(flags)} {'is' if len(flags) == 1 else 'are'} only used with --impl FILE"
            " (the self-check chooses its own sizes and runs no user code)"
        )
    if points is not None and fmt != "gradescope":
        raise CliError(f"--points is only used with --format gradescope (it weights Gradescope's scores); got --format {fmt}")
    if report is not None:
        report_format = _report_format(report)
        check_writable(report, force=force)
    settings = CheckSettings(seed=seed, eps=eps, atol=atol, rtol=rtol, mode=mode, **given)
    limits, weights = _grader_limits(memory), None
    if points is not None:
        from convcli.gradcheck.formats import load_points

        weights = load_points(points)
    from convcli.cli.gradcheck_class import is_class, run_class, submission_checker

    if is_class(impl):
        check = submission_checker(api=api, settings=settings, layers=layers or None, limits=limits)
        passed = run_class(
            impl, check=check, jobs=jobs, fmt=fmt, points=weights, report=report,
            report_format=report_format if report is not None else None, force=force, quiet=quiet,
        )
        if not passed:
            click.get_current_context().exit(1)
        return
    impl = impl[0] if impl else None

    from convcli.gradcheck.reports import CheckReport

    started = time.perf_counter()
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    result = CheckReport(
        checks=[], seed=seed, settings=settings.report(impl=impl is not None), version=__version__, impl=impl,
        timestamp=timestamp,
    )
    error = None
    try:
        _run(result, impl, api, settings, layers or None, quiet, limits)
    except ConvcliError as exc:
        error = exc
        result.error = str(exc)
        result.checks = list(getattr(exc, "records", []))
        result.convention = getattr(exc, "convention", None) or result.convention
        result.notes = list(getattr(exc, "notes", [])) or result.notes
    result.seconds = time.perf_counter() - started
    _present(result, fmt, report, report_format if report is not None else None, force, weights)
    if error is not None:
        from convcli.gradcheck.sanitize import clean_text

        raise CliError(clean_text(str(error))) from error
    if not result.passed:
        click.get_current_context().exit(1)


def _present(result, fmt, report, report_format, force, points=None) -> None:
    """The table or document on stdout, and the --report file (also when the file could not be checked)."""
    from convcli.gradcheck.formats import to_github, to_gradescope
    from convcli.gradcheck.reports import to_json, to_junit
    from convcli.io.files import atomic_write_bytes

    render = {
        "json": to_json,
        "junit": to_junit,
        "gradescope": lambda r: to_gradescope([r], points=points),
        "github": lambda r: to_github([r]),
    }
    if fmt == "text":
        if result.error is None:
            _print_table(result)
    else:
        click.echo(render[fmt](result), nl=False)
    if report is not None:
        atomic_write_bytes(report, render[report_format](result).encode("utf-8"), force=force)


def _report_format(path: str) -> str:
    """``json`` or ``junit``, by the report file's extension."""
    for suffix, report_format in REPORT_SUFFIXES.items():
        if path.lower().endswith(suffix):
            return report_format
    raise CliError(f"--report must end in .json or .xml; got '{path}'")


def _grader_limits(memory):
    """The contained child's limits: ``--memory`` (default 4G); CPU time follows ``--timeout`` (see the session)."""
    from convcli.gradcheck.limits import Limits, parse_memory

    return Limits() if memory is None else Limits(memory=parse_memory(memory))


def _run(result, impl, api, settings, layers, quiet, limits=None) -> None:
    """Run the checks into ``result``, with a progress bar on stderr when it is a terminal."""
    if impl is None:
        from convcli.gradcheck.selfcheck import check_convcli, planned_checks

        chosen = layers or ("dot", "affine", "conv", "pool")
        with _progress(quiet, planned_checks(chosen)) as update:
            result.checks = check_convcli(settings=settings, layers=chosen, progress=update)
        return
    from convcli.gradcheck.impl import check_impl

    with _progress(quiet, None) as update:
        checked = check_impl(impl, api=api, settings=settings, layers=layers, progress=update, limits=limits)
    result.checks, result.convention, result.notes = checked.records, checked.convention, checked.notes


@contextlib.contextmanager
def _progress(quiet, total):
    """A callback ``update(done, total=None)`` that drives a rich progress bar, or does nothing."""
    if not progress_enabled(quiet):
        yield lambda done, total=None: None
        return
    from rich.progress import Progress

    with Progress(console=stderr_console(), transient=True) as bar:
        task = bar.add_task("gradient checks", total=total)
        yield lambda done, total=None: bar.update(task, completed=done, **({"total": total} if total else {}))


def _print_table(result) -> None:
    """The rich table, then the summary line.

    On a terminal the table fits the window.  A CI log or a pipe has no window,
    so there the table is printed at its natural width (each check on one line)
    through a console made for that, which leaves the shared one untouched, and
    with trailing spaces stripped.  The number columns all describe one element,
    the worst (:data:`convcli.gradcheck.reports.WORST_MEANS`).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from convcli.gradcheck.reports import TABLE_COLUMNS, summary_line, table_rows
    from convcli.gradcheck.sanitize import clean_text as clean  # names and messages come from the student's file

    table = Table(title=Text(f"gradcheck of {clean(result.target)}"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in TABLE_COLUMNS:
        numeric = column.endswith("err") or column == "worst index"
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric or column == "result", overflow="fold"
        )
    for row in table_rows(result):
        table.add_row(Text(clean(row[0])), Text(row[1], style=STATUS_STYLE[row[1]]), *(Text(clean(c)) for c in row[2:]))
    console = stdout_console()
    summary = Text(clean(summary_line(result)), style="bold green" if result.passed else "bold red")
    notes = [Text(f"note: {clean(note)}", style="dim") for note in result.notes]
    if console.is_terminal:
        for part in (table, *notes, summary):
            console.print(part)
        return
    # A CI log or a pipe: the table at its natural width (each check on one line), rendered through a console
    # made for that (the shared one is left untouched), without the trailing spaces rich pads each row with.
    import io

    buffer = io.StringIO()
    unwrapped = Console(file=buffer, width=UNWRAPPED_WIDTH, color_system=None)
    for part in (table, *notes, summary):
        unwrapped.print(part)
    console.file.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
