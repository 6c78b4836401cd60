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
    one_blas_thread,
    picture_options,
    preview,
    silence_stdout,
    stderr_console,
    stdout_console,
)
from convcli.cli.completion import complete_kernel


class CheckFailed(click.ClickException):
    """``--verify`` found convcli and scipy disagreeing: a bug, exit status 1."""

    exit_code = 1


@click.command("convolve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("images", nargs=-1, metavar="[IMAGE]")
@click.option("-k", "--kernel", "kernel_specs", required=True, multiple=True, metavar="KERNEL",
              shell_complete=complete_kernel,
              help="A filter name (convcli filters list), a kernel file (.txt .csv .json .npy) or an inline "
                   "matrix like '1,0,-1;2,0,-2;1,0,-1' or '[[1,0,-1],[2,0,-2]]'.  Repeat -k for a pipeline: "
                   "each kernel is applied to the previous map, in float64.")
@click.option("-o", "--output", default=None, metavar="FILE|-",
              help="Write the map: .png .jpg .jpeg .webp .bmp (8-bit picture), .npy (exact float64), "
                   ".tif/.tiff (float32); '-' writes PNG to stdout.  Without -o: print a summary and a preview.")
@conv_options
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Step between kernel positions.")
@click.option("--flip", is_flag=True, help="True convolution: rotate the kernel by 180 degrees first.")
@click.option("--index", type=int, default=None, metavar="I",
              help="Which image of an IDX, .npz or 3-D .npy file, or which frame of a multi-frame TIFF or GIF  "
                   "[default: 0]")
@click.option("--key", default=None, metavar="NAME",
              help="Which array of a .npz archive  [default: the first 3-D array]")
@click.option("--color", is_flag=True,
              help="Keep the colour channels (alpha dropped): a 2-D kernel maps each channel separately; a "
                   "(C, Fh, Fw) .npy kernel sums over them into one map, as one output channel of a conv layer.")
@picture_options
@click.option("--json", "as_json", is_flag=True,
              help="Print the map's statistics as one JSON object on stdout (shape, min, max, mean, std, "
                   "kernel, input, item) instead of the summary and preview.")
@click.option("--verify", is_flag=True,
              help="Also compute the map with scipy.signal.correlate2d and report the largest difference.")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors (and the PNG itself for -o -).")
@handle_errors
def convolve(images, kernel_specs, output, padding, border, stride, flip, index, key, color, normalize, cmap, size,
             force, max_pixels, as_json, verify, quiet):
    """Apply KERNEL to IMAGE (default: a bundled Fashion-MNIST ankle boot).

    IMAGE is a picture (PNG, JPEG, BMP, TIFF, GIF, WebP), an MNIST IDX file
    (raw or .gz; pick an image with --index), a .npy/.npz array, or - for
    bytes on stdin.  Colour becomes grey (Pillow's L) unless --color.

    The map is a 2-D cross-correlation, as in deep learning (--flip makes it
    a true convolution):

    \b
      A[y, x] = sum_ij Xpadded[y*stride + i, x*stride + j] * w[i, j]

    Several -k make a pipeline: -k gaussian -k laplacian is the Laplacian of
    the blurred image, computed in float64 with no rounding between the steps;
    --padding, --border, --stride and --flip apply to every step.

    \b
    Examples:
      convcli convolve -k edge-h                          # summary + preview of the sample
      convcli convolve -k edge-h --size 128 -o edges.png  # the lab's w1, upscaled
      convcli convolve photo.jpg -k sobel-x --padding same --border reflect -o gx.png
      convcli convolve photo.jpg -k gaussian -k laplacian --normalize signed --cmap RdBu_r -o log.png
      convcli convolve photo.jpg --color -k rgb_kernel.npy -o map.npy   # a (3, Fh, Fw) kernel
      convcli convolve train-images-idx3-ubyte.gz --index 7 -k kernel.txt --json
      convcli convolve - -k laplacian -o - < in.png > out.png
    """
    one_blas_thread()  # before numpy is loaded
    from convcli.io import pictures

    if len(images) > 1:
        raise CliError(
            f"convolve takes one IMAGE; got {len(images)} ({', '.join(images)}); for many images use "
            f"'convcli filters render {' '.join(images)} -k KERNEL'"
        )
    with pictures.pixel_limit(max_pixels):
        _convolve(images[0] if images else None, kernel_specs, output, padding, border, stride, flip, index, key,
                  color, normalize, cmap, size, force, as_json, verify, quiet)


def _convolve(image, kernel_specs, output, padding, border, stride, flip, index, key, color, normalize, cmap, size,
              force, as_json, verify, quiet):
    from convcli.io import images, kernels
    from convcli.io.files import check_writable
    from convcli.maps import single as maps
    from convcli.maps import writing
    from convcli.maps.picture import picture_of_map
    from convcli.maps.levels import apply_cmap, colormap_lut, to_uint8

    if output == "-" and (sys.stdout is None or getattr(sys.stdout, "closed", False)):  # started with >&-
        raise CliError("-o - writes PNG bytes to stdout, which is closed; redirect it (> map.png)")
    if output == "-" and sys.stdout.isatty():
        raise CliError("-o - writes PNG bytes to stdout, which is a terminal; redirect it (> map.png)")
    if output == "-" and as_json:
        raise CliError("--json prints to stdout, where -o - writes the PNG; write the picture to a file (-o map.png)")
    fmt = "png" if output == "-" else (writing.output_format(output) if output is not None else None)
    if output not in (None, "-"):
        check_writable(output, force=force)
    if image == "-":
        check_stdin("IMAGE", sys.stdin)
    picture = fmt in writing.PICTURE_FORMATS
    _warn_picture_only(output, picture, quiet)

    source = images.open_source(image if image is not None else images.default_sample(), key=key)
    first = kernel_specs[0]  # a .npy kernel's shape is checked against the image before its data is read
    steps = [kernels.load_kernel(first, check_shape=lambda shape: maps.check_fits(
        source.shape, shape, padding=padding, stride=stride, names=(f"'{source.name}'", f"'{first}'")))]
    steps += [kernels.load_kernel(spec) for spec in kernel_specs[1:]]
    _check_channels(steps, color, cmap)
    if cmap is not None:
        colormap_lut(cmap)  # refuses an unknown name, or says what to install, before any work
    X = source.read([0 if index is None else index], color=color, dtype=None)[0]  # uint8 stays uint8
    options = dict(padding=padding, stride=stride, flip=flip, border=border)
    names = (f"'{source.name}'", [f"'{k.name}'" for k in steps])
    one_map = not color or steps[0].channels is not None  # a (C, Fh, Fw) kernel sums the channels
    A = levels = None
    if picture and not color and not verify and len(steps) == 1:
        # Only the picture is wanted: make it strip by strip, never holding the float64 map.
        # (the summary's mean and std only when it is shown; an integer map's levels made while encoding)
        levels, stats = picture_of_map(X, steps[0].kernel, normalize=normalize, names=(names[0], names[1][0]),
                                       moments=as_json or not quiet, **options)
    else:  # the whole map: for .npy/.tif, --color, --verify, pipelines and the preview
        A = maps.pipeline_map(X, [k.kernel for k in steps], names=names, **options)
        stats = maps.map_stats(A)
        levels = to_uint8(A, normalize) if picture else None
    if cmap is not None and levels is not None and one_map:
        levels = apply_cmap(levels, cmap)
    check = maps.verify_map(X, [k.kernel for k in steps], A, **options) if verify else None
    if check is not None and not check:
        raise CheckFailed(str(check))

    label = _describe(source, index, steps)
    if output == "-":
        write_stdout(lambda stream: writing.save_png(levels, stream, size=size))
    elif output is not None:
        if picture:
            written = writing.write_picture(output, levels, size=size, force=force)
        else:
            written = writing.write_map(output, A, force=force)
        if not quiet:
            stderr_console().print(f"wrote {written} ({label}; map {stats})",
                                   markup=False, highlight=False, soft_wrap=True)
    if as_json:
        import json

        click.echo(json.dumps(_stats_json(stats, steps, source, index, output)))
    elif output is None and not quiet:
        _show(label, A, stats, normalize, cmap, options)
    if check is not None and not quiet:
        console = stderr_console() if output == "-" or as_json else stdout_console()
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


def _check_channels(steps, color, cmap) -> None:
    """A (C, Fh, Fw) kernel needs --color and comes first; --cmap needs one map (not three colour channels)."""
    for position, step in enumerate(steps):
        if step.channels is None:
            continue
        if position:
            raise CliError(f"kernel '{step.name}' has shape {step.kernel.shape} (C, Fh, Fw); only the first -k of "
                           "a pipeline may sum over channels")
        if not color:
            raise CliError(f"kernel '{step.name}' has shape {step.kernel.shape}: one output channel over "
                           f"{step.channels} input channels; add --color to read the image's colour channels")
    if cmap is not None and color and steps[0].channels is None:
        raise CliError("--cmap colours a one-channel map; with --color and a 2-D kernel the map keeps 3 colour "
                       "channels (drop --color, or use a (3, Fh, Fw) .npy kernel to sum them)")


def _stats_json(stats, steps, source, index, output) -> dict:
    """The ``--json`` object: the map's statistics, what made it and where it went."""
    return {
        **stats.to_dict(),
        "kernel": " | ".join(k.name for k in steps),
        "kernels": [{"name": k.name, "shape": list(k.kernel.shape), "values": k.kernel.tolist()} for k in steps],
        "input": source.name,
        "item": (index if index is not None else 0) if source.indexed else None,
        "output": output,
    }


def _describe(source, index, steps) -> str:
    """``edge-h (3x3) on boot.png``; ``gaussian (3x3) then laplacian (3x3) on ...`` for a pipeline."""
    which = f" [{index if index is not None else 0}]" if source.indexed else ""
    kernels = " then ".join(f"{k.name} ({'x'.join(map(str, k.kernel.shape))})" for k in steps)
    return f"{kernels} on {source.name}{which}"


def _warn_picture_only(output, picture, quiet) -> None:
    """--normalize, --cmap and --size shape 8-bit pictures only; say so when they were given for raw output."""
    from click.core import ParameterSource

    if output is None or picture or quiet:
        return
    ctx = click.get_current_context()
    given = [f"--{name}" for name in ("normalize", "cmap", "size")
             if ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        stderr_console().print(f"note: {' and '.join(given)} {verb} to picture output only (.png .jpg .webp .bmp); "
                               f"'{output}' keeps the raw values", markup=False, highlight=False, soft_wrap=True)


def _show(label, A, stats, normalize, cmap, options) -> None:
    """The summary and terminal preview printed when there is no -o."""
    console = stdout_console()
    padding = options["padding"]
    settings = f"padding {padding}" + (f" ({options['border']})" if padding != "valid" else "")
    settings += f", stride {options['stride']}" + (", flipped (true convolution)" if options["flip"] else "")
    console.print(f"{label}, {settings}", markup=False, highlight=False, soft_wrap=True)
    console.print(f"activation map: {stats}", markup=False, highlight=False, soft_wrap=True)
    console.print(preview(console, A, normalize, cmap if A.ndim == 2 else None))
    shown = f"--normalize {normalize}" + (f", --cmap {cmap}" if cmap and A.ndim == 2 else "")
    console.print(f"(preview: {shown}; write the map with -o map.png, .npy or .tif)",
                  markup=False, highlight=False, soft_wrap=True, style="dim")
