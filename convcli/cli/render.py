"""``convcli filters render``: activation maps of many images x many filters, as PNGs and a contact sheet.

The command's options, the PNG run (:func:`convcli.maps.batch.plan_render`
and :func:`~convcli.maps.batch.run_render`, with a rich progress bar) and its
summary.  ``--format npy|zarr`` is handed to :mod:`.render_arrays`.  The
``filters`` group (:mod:`.filters`) adds this command.
"""

from __future__ import annotations

import sys

import click

from convcli.cli.common import (
    CliError,
    Interrupted,
    check_stdin,
    conv_options,
    handle_errors,
    interrupted_message,
    one_blas_thread,
    picture_options,
    progress_enabled,
    signal_of,
    stderr_console,
)
from convcli.cli.completion import complete_filter_name, complete_kernel
from convcli.cli.render_arrays import check_options, render_arrays

#: Where ``filters render`` writes when no -o is given.
DEFAULT_OUTPUT = "convcli-filters"


@click.command("render", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@click.option(
    "-f",
    "--filter",
    "names",
    multiple=True,
    metavar="NAME",
    shell_complete=complete_filter_name,
    help="A named filter (repeatable).  Default: every named filter.  Kernel files and matrices go to -k.",
)
@click.option(
    "-k",
    "--kernel",
    "kernel_specs",
    multiple=True,
    metavar="KERNEL",
    shell_complete=complete_kernel,
    help="A kernel file (.txt .csv .json .npy), a filter name, or an inline matrix like '1,0,-1;2,0,-2;1,0,-1' "
    "or '[[1,0,-1],[2,0,-2]]' (repeatable; after the -f filters).",
)
@click.option(
    "--index",
    default=None,
    metavar="I|A:B|I,J",
    help="Items of IDX, .npz and 3-D .npy inputs: 3, 0:100 or 0,5,7.  Default: all of them.",
)
@click.option("--key", default=None, metavar="NAME", help="Which array of a .npz archive.")
@conv_options
@picture_options
@click.option(
    "-o",
    "--output",
    "out_dir",
    default=DEFAULT_OUTPUT,
    show_default=True,
    metavar="DIR",
    help="Output folder (created if missing).",
)
@click.option(
    "--sheet/--no-sheet",
    default=True,
    show_default=True,
    help="Also write DIR/sheet.png, a labelled contact sheet of the first 64 images.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "npy", "zarr"]),
    default="png",
    show_default=True,
    help="png: a picture per map; npy: DIR/maps.npy, one (N, K, H', W') array; "
    "zarr: DIR/maps.zarr, the same array chunked, computed with Dask (needs convcli[dask]).",
)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True,
              help="Values of npy and zarr arrays.")
@click.option("--scheduler", default="threads", show_default=True, metavar="threads|processes|ADDRESS",
              help="Where zarr maps are computed: Dask threads, processes, or a dask.distributed "
              "scheduler such as tcp://host:8786.")
@click.option("--resume", is_flag=True,
              help="zarr: keep the chunks an interrupted run stored (same inputs and options) and finish.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary; only errors.")
@click.pass_context
@handle_errors
def render(ctx, inputs, names, kernel_specs, index, key, padding, border, normalize, cmap, size, force, max_pixels,
           out_dir, sheet, fmt, dtype, scheduler, resume, quiet):
    """Render activation maps and a contact sheet, or one array of them all.

    Every filter (-f, -k; default: the whole library) on every INPUT.

    INPUT is anything convolve reads (pictures, MNIST IDX raw or .gz, .npy,
    .npz, - for stdin); with no INPUT, the bundled samples.  Writes
    DIR/<stem>/<filter>.png (DIR/<stem>-<index>/<filter>.png for indexed
    inputs), DIR/manifest.json (every file with its map's raw min and max)
    and DIR/sheet.png.  A DIR that holds only an earlier render (every file
    listed in its manifest.json) is replaced: run the same command again.  A
    DIR holding other files is refused without --force; with it, only the
    files written here are replaced: the old manifest.json and sheet.png are
    deleted first and the new ones written last, so a run that stops half-way
    never leaves a manifest describing other maps.  One render at a time per
    DIR (a second one fails at once); links inside DIR are never followed.
    Runs of over 2,000 maps say first what they will write.

    --format npy writes every map of every item into DIR/maps.npy, shape
    (items, filters, H', W'), and --format zarr into the Zarr store
    DIR/maps.zarr (chunked by items, resumable with --resume); both need
    items of one size (--size PX scales and centre-crops each to PX×PX)
    and maps of one size (e.g. --padding same), take
    folders of pictures and quoted glob patterns ('photos/*.jpg') as INPUT,
    and write DIR/manifest.json (inputs, filters with kernels, options).

    \b
    Examples:
      convcli filters render                                  # bundled samples, every filter
      convcli filters render -f sobel-x -f sobel-y --normalize signed --cmap RdBu_r -o edges
      convcli filters render t10k-images-idx3-ubyte.gz --index 0:100 -f edge-h -f box -f sharpen
      convcli filters render photo.jpg -k '0,-1,0;-1,5,-1;0,-1,0' --padding same -o out --force
      convcli filters render train-images-idx3-ubyte.gz --padding same --format npy -o features
      convcli filters render train-images-idx3-ubyte.gz --padding same --format zarr --scheduler processes
    """
    one_blas_thread()  # before numpy is loaded
    from convcli.io import pictures

    with pictures.pixel_limit(max_pixels):
        _render(ctx, inputs, names, kernel_specs, index, key, padding, border, normalize, cmap, size, force, out_dir,
                sheet, fmt, dtype, scheduler, resume, quiet)


def _render(ctx, inputs, names, kernel_specs, index, key, padding, border, normalize, cmap, size, force, out_dir, sheet,
            fmt, dtype, scheduler, resume, quiet):
    import time

    from convcli.io import images, kernels, library
    from convcli.maps import batch, single

    started = time.perf_counter()
    if "-" in inputs:
        check_stdin("INPUT", sys.stdin)
    check_options(ctx, fmt)
    if fmt != "png":  # folders and glob patterns are inputs too: the array writers open them
        chosen = [_named_filter(n) for n in names] + [kernels.load_kernel(k) for k in kernel_specs]
        return render_arrays(list(inputs) or batch.sample_inputs()[:1], chosen or list(library.FILTERS.values()),
                             out_dir, fmt=fmt, dtype=dtype, scheduler=scheduler, resume=resume, index=index,
                             key=key, padding=padding, border=border, size=size, force=force,
                             quiet=quiet)
    sources = [images.open_source(s, key=key) for s in list(inputs) or batch.sample_inputs()]

    def fits(spec):  # a kernel file's shape is checked against every input before its data is read
        return lambda shape: [single.check_fits(s.shape, shape, padding=padding, names=(f"'{s.name}'", f"'{spec}'"))
                              for s in sources]

    chosen = [_named_filter(n) for n in names] + [kernels.load_kernel(k, check_shape=fits(k)) for k in kernel_specs]
    plan = batch.plan_render(
        sources,
        chosen or list(library.FILTERS.values()),
        out_dir,
        index=index,
        key=key,
        padding=padding,
        border=border,
        normalize=normalize,
        cmap=cmap,
        size=size,
        sheet=sheet,
        force=force,
    )
    if not quiet and plan.total_maps >= LARGE_RUN_MAPS:
        stderr_console().print(
            f"note: {_count(plan.total, 'image')} × {_count(len(plan.filters), 'filter')} = "
            f"{_count(plan.total_maps, 'map')} (about {_bytes(plan.estimated_bytes)}) into {plan.out_dir}; "
            "choose items with --index and filters with -f to write fewer",
            markup=False, highlight=False, soft_wrap=True,
        )
    try:
        result = _run_with_bar(plan) if progress_enabled(quiet) else batch.run_render(plan)
    except KeyboardInterrupt as exc:
        raise Interrupted(
            f"{interrupted_message(exc)}; {_left_behind(plan)} (run again with --force to redo them)", signal_of(exc)
        ) from None
    if not quiet:
        where = f"; contact sheet: {result.sheet}" if result.sheet else ""
        stderr_console().print(
            f"rendered {_count(result.images, 'image')} × {_count(len(plan.filters), 'filter')} = "
            f"{_count(result.maps, 'map')} in {time.perf_counter() - started:.1f} s into {plan.out_dir}{where}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _left_behind(plan) -> str:
    """What a render that stopped half-way leaves (a ``--force`` render removed the old manifest and sheet first)."""
    return f"'{plan.out_dir}' holds the maps written so far, without manifest.json or sheet.png"


#: Runs with at least this many maps say what they will write before starting.
LARGE_RUN_MAPS = 2000


def _named_filter(name: str):
    """``-f NAME``: a library filter; a kernel file or matrix given to -f is pointed to -k."""
    from pathlib import Path

    from convcli.io import library

    if name not in library.FILTERS and (Path(name).exists() or any(c in name for c in "/\\.,;[")):
        raise CliError(f"-f takes a filter name (convcli filters list); for the kernel '{name}' use -k {name}")
    return library.get_filter(name)


def _bytes(n: int) -> str:
    """``1.1 GB``, ``350 MB``, ``12 kB`` (powers of 1000)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{n} bytes"


def _run_with_bar(plan):
    """:func:`convcli.maps.batch.run_render` with a rich progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from convcli.maps import batch

    columns = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn())
    with Progress(*columns, console=stderr_console(), transient=True) as bar:
        task = bar.add_task("render", total=plan.total)
        return batch.run_render(plan, progress=lambda n: bar.advance(task, n))


def _count(n: int, noun: str) -> str:
    """``1 image``, ``1,000 images``."""
    return f"{n:,} {noun}{'s' * (n != 1)}"
