"""``convcli filters``: list and show the filter library; ``render`` (batch-rendering) is :mod:`.render`'s.

A thin adapter over :mod:`convcli.io.library` (the library) and
:mod:`convcli.maps.single` (one map for ``show``).  numpy, Pillow and rich
are imported inside the commands so that ``convcli --help`` stays fast.
"""

from __future__ import annotations

import click

from convcli.cli.common import NORMALIZATIONS, NORMALIZE_HELP, conv_options, handle_errors, preview, stdout_console
from convcli.cli.completion import complete_kernel
from convcli.cli.render import render


@click.group("filters", context_settings={"help_option_names": ["-h", "--help"]})
def filters() -> None:
    """List, show and batch-render the filter library.

    \b
    Examples:
      convcli filters list                       # name, size, kernel, sum, description
      convcli filters show sobel-x               # the matrix, its properties, a preview
      convcli filters render                     # every filter on the bundled samples
    """


# ----------------------------------------------------------------------------- list


@filters.command("list")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="A table for people, or JSON (name, kernel, description) on stdout.",
)
@handle_errors
def list_filters(fmt: str) -> None:
    """List every named filter.

    \b
    Examples:
      convcli filters list
      convcli filters list --format json | jq -r '.[].name'
    """
    from convcli.io.library import FILTERS

    if fmt == "json":
        import json

        rows = [{"name": f.name, "kernel": _plain(f.kernel), "description": f.description} for f in FILTERS.values()]
        click.echo("[\n" + ",\n".join("  " + json.dumps(row) for row in rows) + "\n]")  # one filter a line
        return

    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column, justify in (
        ("name", "left"),
        ("size", "left"),
        ("kernel", "left"),
        ("sum", "right"),
        ("description", "left"),
    ):
        table.add_column(column, justify=justify, no_wrap=column in ("name", "size", "sum"))
    for f in FILTERS.values():
        table.add_row(f.name, _size(f.kernel), _compact(f.kernel), _number(f.kernel.sum()), f.description)
    stdout_console().print(table)


# ----------------------------------------------------------------------------- show


@filters.command("show")
@click.argument("kernel_spec", metavar="NAME|KERNEL", shell_complete=complete_kernel)
@conv_options
@click.option("--normalize", type=click.Choice(NORMALIZATIONS), default="minmax", show_default=True,
              help=NORMALIZE_HELP.replace("How pictures map", "How the preview maps"))
@handle_errors
def show(kernel_spec: str, padding, border: str, normalize: str) -> None:
    """Show a filter: matrix, properties, preview.

    NAME is a filter of 'convcli filters list'; a kernel file or an inline
    matrix works too (as -k of convolve).  The preview is the activation map on
    the bundled sample (a Fashion-MNIST ankle boot).  A .npy kernel of shape
    (C, Fh, Fw) is one output channel of a conv layer: it is shown channel by
    channel and previewed on the bundled colour scene, summing over R, G, B.

    \b
    Examples:
      convcli filters show edge-h
      convcli filters show laplacian --normalize signed
      convcli filters show '1,0,-1;2,0,-2;1,0,-1'
      convcli filters show rgb_kernel.npy        # a (3, Fh, Fw) array
    """
    from convcli.io import images, kernels, library
    from convcli.maps import single as maps

    f = kernels.load_kernel(kernel_spec)
    colour = f.channels is not None
    sample = images.SAMPLE_DIR / "scene-256.png" if colour else images.default_sample()
    X = images.read_image(sample, color=colour)
    A = maps.convolve_map(X, f.kernel, padding=padding, border=border, names=(f"'{sample.name}'", f"'{f.name}'"))

    console = stdout_console()
    say = lambda text, **kw: console.print(text, markup=False, highlight=False, soft_wrap=True, **kw)  # noqa: E731
    say(f"{f.name} ({_size(f.kernel)})", style="bold")
    say(f.description)
    yes = {True: "yes", False: "no"}
    for c, plane in enumerate(f.kernel if colour else [f.kernel]):
        say("")
        if colour:
            say(f"channel {c}" + (f" ({'RGB'[c]})" if f.channels == 3 else ""))
        for line in _matrix_lines(plane):
            say("  " + line)
        say("")
        say(
            f"sum {_number(plane.sum())} · zero-sum {yes[library.is_zero_sum(plane)]}"
            f" · separable {yes[library.is_separable(plane)]}"
        )
    say("")
    summed = ", summed over its channels" if colour else ""
    say(f"activation map on {sample.name} (padding {padding}{summed}): {maps.map_stats(A)}")
    console.print(preview(console, A, normalize))


# ----------------------------------------------------------------------------- formatting


def _number(value: float) -> str:
    """A value as short as it is exact: ``-1``, ``0.5``, ``0.111111``."""
    value = float(round(float(value), 12)) + 0.0  # no "-0"
    return f"{int(value)}" if value.is_integer() else f"{value:.6g}"


def _plain(kernel):
    """The kernel as nested lists, whole numbers as ints (for JSON)."""
    return [[int(v) if float(v).is_integer() else float(v) for v in row] for row in kernel.tolist()]


def _size(kernel) -> str:
    return "×".join(str(n) for n in kernel.shape)


def _factored(kernel):
    """``(d, values)``: the smallest d <= 1024 with ``d * kernel`` all whole numbers and those numbers
    (``d = 1`` and the kernel itself when there is none), so ``blur`` reads ``1/9 × 1 1 1 / ...``."""
    import numpy as np

    for d in range(1, 1025):
        scaled = kernel * d
        if np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-9):
            return d, np.rint(scaled)
    return 1, kernel


def _compact(kernel) -> str:
    """One line: ``-1 0 1 / -2 0 2 / -1 0 1``, with a common factor pulled out (``1/9 × ...``)."""
    d, values = _factored(kernel)
    rows = " / ".join(" ".join(_number(v) for v in row) for row in values)
    return f"1/{d} × {rows}" if d > 1 else rows


def _matrix_lines(kernel) -> list[str]:
    """The kernel as aligned rows, with a common factor pulled out when there is one."""
    d, values = _factored(kernel)
    cells = [[_number(v) for v in row] for row in values]
    width = max(len(c) for row in cells for c in row)
    lines = [" ".join(c.rjust(width) for c in row) for row in cells]
    if d > 1:
        prefix = f"1/{d} × "
        lines = [(prefix if i == len(lines) // 2 else " " * len(prefix)) + line for i, line in enumerate(lines)]
    return lines


filters.add_command(render)
