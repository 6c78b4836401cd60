"""What every convcli command shares: the two consoles, error translation and
shared option decorators.  This is CLI-only code: click and rich live here and
in the other ``cli*.py`` modules, nowhere else.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from convcli.errors import ConvcliError


class CliError(click.ClickException):
    """A bad argument or input: one ``Error: ...`` line and exit status 2."""

    exit_code = 2


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the core's :class:`ConvcliError` (and unreadable files) into one ``Error:`` line.

    Real bugs (any other exception) still show their traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConvcliError as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:  # file system trouble the core did not anticipate
            where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
            raise CliError(f"cannot access{where}: {exc.strerror or exc}") from exc

    return wrapper


@functools.lru_cache(maxsize=None)
def stdout_console():
    """The one rich console for results (stdout)."""
    from rich.console import Console

    return Console()


@functools.lru_cache(maxsize=None)
def stderr_console():
    """The one rich console for logs, progress and warnings (stderr)."""
    from rich.console import Console

    return Console(stderr=True)


def progress_enabled(quiet: bool) -> bool:
    """A progress bar is shown only on a terminal and when not ``--quiet``."""
    return not quiet and sys.stderr.isatty()


# ---------------------------------------------------------------- shared options


def _padding(value: str) -> str | int:
    if value in ("valid", "same", "full"):
        return value
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"expected valid, same, full or a whole number >= 0, got {value!r}") from None
    if number < 0:
        raise click.BadParameter(f"expected a whole number >= 0, got {number}")
    return number


BORDERS = ("zero", "reflect", "symmetric", "edge", "wrap")
NORMALIZATIONS = ("minmax", "abs", "clip", "signed")


def conv_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--padding`` and ``--border`` (shared by ``convolve`` and ``filters render``)."""
    func = click.option(
        "--border", type=click.Choice(BORDERS), default="zero", show_default=True,
        help="How same/full/N padding fills the border (numpy.pad modes; zero = constant 0).",
    )(func)
    func = click.option(
        "--padding", default="valid", show_default=True, callback=lambda c, p, v: _padding(v),
        metavar="valid|same|full|N", help="Padding of the image before correlating.",
    )(func)
    return func


#: The ``--normalize`` formulas (a is a map value), for every command's --help.
NORMALIZE_HELP = (
    "How pictures map values a to 0..255.  minmax: 255*(a - min)/(max - min) (a constant map is all 128); "
    "abs: 255*|a|/max|a|; clip: a rounded and clipped to 0..255; signed: 127.5 + 127.5*a/max|a|, so 0 -> 128."
)


def picture_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--normalize``, ``--cmap``, ``--size``, ``--force`` and ``--max-pixels`` (commands that write pictures)."""
    func = max_pixels_option(func)
    func = click.option("--force", is_flag=True, help="Overwrite existing output.")(func)
    func = click.option(
        "--size", type=click.IntRange(min=1), default=None, metavar="PX",
        help="Upscale (nearest neighbour) so the longer side is PX pixels.",
    )(func)
    func = click.option(
        "--cmap", default=None, metavar="NAME",
        help="Colour the 8-bit picture with matplotlib's colour map NAME (needs convcli[cmap]).  For signed "
             "maps (edges) use a diverging map with --normalize signed, e.g. --cmap RdBu_r: 0 is the middle colour.",
    )(func)
    func = click.option(
        "--normalize", type=click.Choice(NORMALIZATIONS), default="minmax", show_default=True, help=NORMALIZE_HELP,
    )(func)
    return func


def max_pixels_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--max-pixels N`` (env ``CONVCLI_MAX_PIXELS``): the input size limit; 0 means none."""
    return click.option(
        "--max-pixels", type=click.IntRange(min=0), default=None, envvar="CONVCLI_MAX_PIXELS", metavar="N",
        help="Largest input picture in pixels (decompression-bomb protection); 0: no limit.  "
             "Env: CONVCLI_MAX_PIXELS.  [default: 50000000]",
    )(func)


# ---------------------------------------------------------------- terminal preview

#: Dark to bright, for terminals without colour (each pixel is printed twice, for a square aspect).
_RAMP = " .:-=+*#%@"


def preview(console, A, normalize: str, cmap: "str | None" = None):
    """A rich Text picture of the map: coloured half blocks on a colour terminal, shade characters elsewhere.

    With ``cmap`` (a one-channel map on a 256-colour or true-colour terminal) the blocks take that colour map.
    """
    from rich.text import Text

    from convcli.maps import single as maps

    width = max(8, console.width - 2)
    text = Text()
    if console.color_system not in ("256", "truecolor") or console.no_color:  # 8/16 colours have no grey ramp
        levels = maps.preview_levels(A, normalize=normalize, max_width=min(48, width // 2), max_height=28)
        grey = levels.mean(axis=2) if levels.ndim == 3 else levels
        rows = ("".join(_RAMP[int(v) * len(_RAMP) // 256] * 2 for v in row) for row in grey.tolist())
        return Text("\n".join(rows))
    levels = maps.preview_levels(A, normalize=normalize, max_width=min(64, width), max_height=48)
    if cmap is not None and levels.ndim == 2:
        from convcli.maps.levels import apply_cmap

        levels = apply_cmap(levels, cmap)
    rgb = (levels if levels.ndim == 3 else levels[..., None].repeat(3, axis=2)).tolist()
    for y in range(0, len(rgb), 2):
        if y:
            text.append("\n")
        below = rgb[y + 1] if y + 1 < len(rgb) else None  # an odd last row has no lower half
        for x, (r, g, b) in enumerate(rgb[y]):
            style = f"rgb({r},{g},{b})" + (" on rgb({},{},{})".format(*below[x]) if below else "")
            text.append("▀", style=style)
    return text
