"""``convcli filters render --format npy|zarr``: the whole dataset's maps as one array.

The array half of ``render`` (:mod:`convcli.cli.render`): it checks which
options apply, plans with :func:`convcli.maps.arrays.plan_arrays`, runs
:func:`~convcli.maps.arrays.run_npy` or :func:`convcli.maps.zarrstore.run_zarr`
with a rich progress bar on stderr, and prints one summary line.
"""

from __future__ import annotations

import time

import click

from convcli.cli.common import CliError, progress_enabled, stderr_console

#: Options of ``render`` that only PNG output uses, and those that only array output uses.
PNG_ONLY = {"normalize": "--normalize", "sheet": "--sheet/--no-sheet"}
ARRAY_ONLY = {"dtype": ("--dtype", "npy or zarr"), "scheduler": ("--scheduler", "zarr"), "resume": ("--resume", "zarr")}


class Interrupted(click.ClickException):
    """Ctrl-C: one ``Error:`` line saying what is left, exit status 130 (as for SIGINT)."""

    exit_code = 130


def check_options(ctx: click.Context, fmt: str) -> None:
    """Refuse, before any work, options given on the command line that ``--format fmt`` does not use."""

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) not in (
            click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP, None
        )

    if fmt == "png":
        for name, (flag, formats) in ARRAY_ONLY.items():
            if given(name):
                raise CliError(f"{flag} applies to --format {formats}, not png")
        return
    for name, flag in PNG_ONLY.items():
        if given(name):
            raise CliError(f"{flag} applies to --format png (PNG pictures); npy and zarr store the raw maps")
    if fmt == "npy" and given("scheduler"):
        raise CliError("--scheduler applies to --format zarr, which computes with Dask")
    if ctx.params.get("resume") and ctx.params.get("force"):
        raise CliError("--resume keeps what a previous run stored and --force replaces it; give one of them")


def render_arrays(inputs, filters, out_dir, *, fmt, dtype, scheduler, resume, index, key, padding, border,
                  size, force, quiet) -> None:
    """Plan, run and report an npy or zarr render."""
    from convcli.maps import arrays

    started = time.perf_counter()
    if fmt == "zarr":
        from convcli.maps import zarrstore

        zarrstore.require()  # before reading anything: say what to install
        zarrstore.check_scheduler(scheduler)
    plan = arrays.plan_arrays(inputs, filters, out_dir, format=fmt, dtype=dtype, index=index, key=key,
                              padding=padding, border=border, size=size, force=force, resume=resume)
    console = stderr_console()

    def log(text: str) -> None:
        if not quiet:
            console.print(text, markup=False, highlight=False, soft_wrap=True)

    def run(progress=None):
        if fmt == "npy":
            return arrays.run_npy(plan, progress=progress)
        return zarrstore.run_zarr(plan, scheduler=scheduler, progress=progress, log=log)

    try:
        path = _with_bar(plan, run) if progress_enabled(quiet) else run()
    except KeyboardInterrupt:
        if fmt == "npy":
            raise Interrupted(f"interrupted; nothing was written to '{plan.out_dir / arrays.NPY}'") from None
        raise Interrupted(
            f"interrupted; '{path_of(plan)}' keeps the chunks stored so far: run the same command with --resume "
            "to finish it"
        ) from None
    n, K, h, w = plan.shape
    size = n * K * h * w * (4 if dtype == "float32" else 8)
    log(
        f"rendered {n:,} item{'s' * (n != 1)} × {K} filter{'s' * (K != 1)} into {path}: "
        f"{dtype} array of shape ({n}, {K}, {h}, {w}), {size / 2**20:,.1f} MiB, "
        f"in {time.perf_counter() - started:.1f} s"
    )


def path_of(plan) -> str:
    from convcli.maps import arrays

    return str(plan.out_dir / (arrays.NPY if plan.format == "npy" else arrays.ZARR))


def _with_bar(plan, run):
    """``run(progress)`` with a rich progress bar of items on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("items"), TimeRemainingColumn())
    with Progress(*columns, console=stderr_console(), transient=True) as bar:
        task = bar.add_task("render", total=plan.total)
        return run(lambda n: bar.advance(task, n))
