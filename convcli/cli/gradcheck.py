"""``convcli gradcheck``: gradient-check convcli's layers, or the lab functions in someone's file.

The command parses its options, runs :func:`convcli.gradcheck.selfcheck.check_convcli` or
:func:`convcli.gradcheck.impl.check_impl`, and presents the records as a rich table,
JSON or JUnit XML (rendered by :mod:`convcli.gradcheck.reports`).  Exit status: 0 when
every check passed or was skipped, 1 when one failed, 2 for a usage error.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime, timezone

import click

from convcli import __version__
from convcli.cli.common import CliError, handle_errors, progress_enabled, stderr_console, stdout_console

FORMATS = ("text", "json", "junit")
REPORT_SUFFIXES = {".json": "json", ".xml": "junit"}
STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "SKIP": "yellow"}
#: The console width of the table in a CI log or a pipe, where nothing should wrap.
UNWRAPPED_WIDTH = 10_000


@click.command("gradcheck")
@click.option(
    "--impl", "impl", metavar="FILE.py", help="Check the lab functions in this file instead of convcli's layers."
)
@click.option(
    "--layer",
    "layers",
    type=click.Choice(["dot", "conv"]),
    multiple=True,
    help="Only these layers (repeatable). Default: both.",
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
    help="full: every element by central differences; fast: a few random directions.",
)
@click.option(
    "--size", type=click.IntRange(min=1), default=None, metavar="N", help="With --impl: X is N x N.  [default: 8]"
)
@click.option(
    "--kernel-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="F",
    help="With --impl: w is F x F.  [default: 3]",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --impl: seconds each function may take.  [default: 60]",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True, help="What goes to stdout."
)
@click.option("--report", metavar="FILE", help="Also write a JSON (.json) or JUnit XML (.xml) report to FILE.")
@click.option("--force", is_flag=True, help="Overwrite an existing --report file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@handle_errors
def gradcheck(impl, layers, seed, eps, atol, rtol, mode, size, kernel_size, timeout, fmt, report, force, quiet):
    """Gradient-check convcli's layers, or the lab functions in a student's FILE.py.

    Without --impl, convcli checks its own Dot and Conv layers over a spread of
    configurations (even and non-square kernels, every padding and border,
    strides 1-3, flip, batch, bank).  With --impl, it loads FILE.py in a child
    process and checks whichever of dot_forward, dot_backward, conv_forward and
    conv_backward it defines; absent ones are skipped.

    Exit status: 0 all passed (or skipped), 1 a check failed, 2 usage error.

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
      convcli gradcheck --impl lab.py --layer conv --kernel-size 5
      convcli gradcheck --impl lab.py --format json > verdict.json
      convcli gradcheck --impl student.py --report results.xml
    """
    from convcli.gradcheck.lab import CheckSettings
    from convcli.io.files import atomic_write_bytes, check_writable

    file_options = {"size": size, "kernel_size": kernel_size, "timeout": timeout}
    given = {name: value for name, value in file_options.items() if value is not None}
    if impl is None and given:
        flags = " and ".join("--" + name.replace("_", "-") for name in given)
        raise CliError(
            f"{flags} {'is' if len(given) == 1 else 'are'} only used with --impl FILE.py"
            " (the self-check chooses its own sizes and runs no user code to time)"
        )
    if report is not None:
        report_format = _report_format(report)
        check_writable(report, force=force)
    settings = CheckSettings(seed=seed, eps=eps, atol=atol, rtol=rtol, mode=mode, **given)

    started = time.perf_counter()
    timestamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    records = _run(impl, settings, layers or ("dot", "conv"), quiet)

    from convcli.gradcheck.reports import CheckReport, to_json, to_junit

    result = CheckReport(
        checks=records,
        seed=seed,
        settings=settings.report(impl=impl is not None),
        version=__version__,
        impl=impl,
        seconds=time.perf_counter() - started,
        timestamp=timestamp,
    )
    render = {"json": to_json, "junit": to_junit}
    if fmt == "text":
        _print_table(result)
    else:
        click.echo(render[fmt](result), nl=False)
    if report is not None:
        atomic_write_bytes(report, render[report_format](result).encode("utf-8"), force=force)
    if not result.passed:
        click.get_current_context().exit(1)


def _report_format(path: str) -> str:
    """``json`` or ``junit``, by the report file's extension."""
    for suffix, report_format in REPORT_SUFFIXES.items():
        if path.lower().endswith(suffix):
            return report_format
    raise CliError(f"--report must end in .json or .xml; got '{path}'")


def _run(impl, settings, layers, quiet):
    """Run the checks, with a progress bar on stderr when it is a terminal."""
    if impl is None:
        from convcli.gradcheck.selfcheck import check_convcli as run
        from convcli.gradcheck.selfcheck import planned_checks
    else:
        from convcli.gradcheck.impl import check_impl, planned_checks

        run = functools.partial(check_impl, impl)
    if not progress_enabled(quiet):
        return run(settings=settings, layers=layers)
    from rich.progress import Progress

    with Progress(console=stderr_console(), transient=True) as bar:
        task = bar.add_task("gradient checks", total=planned_checks(layers))
        return run(settings=settings, layers=layers, progress=lambda done: bar.update(task, completed=done))


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

    table = Table(title=f"gradcheck of {result.target}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in TABLE_COLUMNS:
        numeric = column.endswith("err") or column == "worst index"
        table.add_column(
            column, justify="right" if numeric else "left", no_wrap=numeric or column == "result", overflow="fold"
        )
    for row in table_rows(result):
        table.add_row(Text(row[0]), Text(row[1], style=STATUS_STYLE[row[1]]), *(Text(cell) for cell in row[2:]))
    console = stdout_console()
    summary = Text(summary_line(result), style="bold green" if result.passed else "bold red")
    if console.is_terminal:
        console.print(table)
        console.print(summary)
        return
    # A CI log or a pipe: the table at its natural width (each check on one line), rendered through a console
    # made for that (the shared one is left untouched), without the trailing spaces rich pads each row with.
    import io

    buffer = io.StringIO()
    Console(file=buffer, width=UNWRAPPED_WIDTH, color_system=None).print(table, summary)
    console.file.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))
