"""``convcli convolve``: one image, one kernel, one activation map.

A thin adapter: parse the options, check the output can be written, then call
:mod:`convcli.io.kernels`, :mod:`convcli.io.images` and :mod:`convcli.maps.single`, and
present the result.  numpy, Pillow, scipy and rich are imported inside the
command so that ``convcli --help`` stays fast.
"""

from __future__ import annotations

import sys

import click

from convcli.cli.common import (
    CliError,
    check_stdin,
    conv_options,
    handle_errors,
    picture_options,
    preview,
    silence_stdout,
    stderr_console,
    stdout_console,
)


class CheckFailed(click.ClickException):
    """``--verify`` found convcli and scipy disagreeing: a bug, exit status 1."""

    exit_code = 1


@click.command("convolve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image", required=False, metavar="[IMAGE]")
@click.option("-k", "--kernel", "kernel_spec", required=True, metavar="KERNEL",
              help="A filter name (convcli filters list), a kernel file (.txt .csv .json .npy) "
                   "or an inline matrix like '1,0,-1;2,0,-2;1,0,-1'.")
@click.option("-o", "--output", default=None, metavar="FILE|-",
              help="Write the map: .png (8-bit picture), .npy (exact float64), .tif/.tiff (float32); "
                   "'-' writes PNG to stdout.  Without -o: print a summary and a preview.")
@conv_options
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Step between kernel positions.")
@click.option("--flip", is_flag=True, help="True convolution: rotate the kernel by 180 degrees first.")
@click.option("--index", type=int, default=None, metavar="I",
              help="Which image of an IDX, .npz or 3-D .npy file  [default: 0]")
@click.option("--key", default=None, metavar="NAME",
              help="Which array of a .npz archive  [default: the first 3-D array]")
@click.option("--color", is_flag=True, help="Convolve each colour channel separately and keep them (alpha dropped).")
@picture_options
@click.option("--verify", is_flag=True,
              help="Also compute the map with scipy.signal.correlate2d and report the largest difference.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors (and the PNG itself for -o -).")
@handle_errors
def convolve(image, kernel_spec, output, padding, border, stride, flip, index, key, color, normalize, size, force,
             verify, quiet):
    """Apply KERNEL to IMAGE (default: a bundled Fashion-MNIST ankle boot).

    IMAGE is a picture (PNG, JPEG, BMP, TIFF, GIF, WebP), an MNIST IDX file
    (raw or .gz; pick an image with --index), a .npy/.npz array, or - for
    bytes on stdin.  Colour becomes grey (Pillow's L) unless --color.

    The map is a 2-D cross-correlation, as in deep learning (--flip makes it
    a true convolution):

    \b
      A[y, x] = sum_ij Xpadded[y*stride + i, x*stride + j] * w[i, j]

    \b
    Examples:
      convcli convolve -k edge-h                          # summary + preview of the sample
      convcli convolve -k edge-h --size 128 -o edges.png  # the lab's w1, upscaled
      convcli convolve photo.jpg -k sobel-x --padding same --border reflect -o gx.png
      convcli convolve train-images-idx3-ubyte.gz --index 7 -k kernel.txt -o map.npy
      convcli convolve - -k laplacian -o - < in.png > out.png
    """
    from convcli.io import images, kernels
    from convcli.io.files import check_writable
    from convcli.maps import single as maps
    from convcli.maps import writing
    from convcli.maps.levels import to_uint8

    if output == "-" and (sys.stdout is None or getattr(sys.stdout, "closed", False)):  # started with >&-
        raise CliError("-o - writes PNG bytes to stdout, which is closed; redirect it (> map.png)")
    if output == "-" and sys.stdout.isatty():
        raise CliError("-o - writes PNG bytes to stdout, which is a terminal; redirect it (> map.png)")
    if output not in (None, "-"):
        writing.output_format(output)
        check_writable(output, force=force)
    if image == "-":
        check_stdin("IMAGE", sys.stdin)
    _warn_png_only(output, quiet)

    source = images.open_source(image if image is not None else images.default_sample(), key=key)
    kernel = kernels.load_kernel(kernel_spec, check_shape=lambda shape: maps.check_fits(
        source.shape, shape, padding=padding, stride=stride, names=(f"'{source.name}'", f"'{kernel_spec}'")))
    X = source.read([0 if index is None else index], color=color, dtype=None)[0]  # uint8 stays uint8
    options = dict(padding=padding, stride=stride, flip=flip, border=border)
    names = (f"'{source.name}'", f"'{kernel.name}'")
    png = output == "-" or (output is not None and writing.output_format(output) == "png")
    A = levels = None
    if png and not color and not verify:
        # Only the picture is wanted: make it strip by strip, never holding the float64 map.
        levels, stats = maps.map_picture(X, kernel.kernel, normalize=normalize, names=names, **options)
    else:  # the whole map: for .npy/.tif, --color, --verify and the preview
        A = maps.convolve_map(X, kernel.kernel, names=names, **options)
        stats = maps.map_stats(A)
        levels = to_uint8(A, normalize) if png else None
    check = maps.verify_map(X, kernel.kernel, A, **options) if verify else None
    if check is not None and not check:
        raise CheckFailed(str(check))

    if output == "-":
        write_stdout(lambda stream: writing.save_png(levels, stream, size=size))
    elif output is not None:
        if png:
            written = writing.write_picture(output, levels, size=size, force=force)
        else:
            written = writing.write_map(output, A, force=force)
        if not quiet:
            stderr_console().print(f"wrote {written} ({_describe(source, index, kernel)}; map {stats})",
                                   markup=False, highlight=False, soft_wrap=True)
    elif not quiet:
        _show(source, index, kernel, A, stats, normalize, options)
    if check is not None and not quiet:
        console = stderr_console() if output == "-" else stdout_console()
        console.print(str(check), markup=False, highlight=False, soft_wrap=True)


def write_stdout(write) -> None:
    """``write(sys.stdout.buffer)`` then flush; a full disk or a closed pipe is one Error line naming stdout."""
    stream = sys.stdout.buffer
    try:
        write(stream)
        stream.flush()
    except OSError as exc:
        silence_stdout()
        reason = "the program reading it has exited (broken pipe)" if isinstance(exc, BrokenPipeError) else (
            exc.strerror or str(exc))
        raise CliError(f"cannot write the PNG to stdout: {reason}") from None


def _describe(source, index, kernel) -> str:
    which = f" [{index if index is not None else 0}]" if source.indexed else ""
    rows, cols = kernel.kernel.shape
    return f"{kernel.name} ({rows}x{cols}) on {source.name}{which}"


def _warn_png_only(output, quiet) -> None:
    """--normalize and --size shape PNG pictures only; say so when they were given for raw output."""
    from click.core import ParameterSource

    if output is None or output == "-" or output.lower().endswith(".png") or quiet:
        return
    ctx = click.get_current_context()
    given = [f"--{name}" for name in ("normalize", "size")
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)]
    if given:
        stderr_console().print(f"note: {' and '.join(given)} apply to PNG output only; '{output}' keeps the raw "
                               "values", markup=False, highlight=False, soft_wrap=True)


def _show(source, index, kernel, A, stats, normalize, options) -> None:
    """The summary and terminal preview printed when there is no -o."""
    console = stdout_console()
    padding = options["padding"]
    settings = f"padding {padding}" + (f" ({options['border']})" if padding != "valid" else "")
    settings += f", stride {options['stride']}" + (", flipped (true convolution)" if options["flip"] else "")
    console.print(f"{_describe(source, index, kernel)}, {settings}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"activation map: {stats}", markup=False, highlight=False, soft_wrap=True)
    console.print(preview(console, A, normalize))
    console.print(f"(preview: --normalize {normalize}; write the map with -o map.png, .npy or .tif)",
                  markup=False, highlight=False, soft_wrap=True, style="dim")
