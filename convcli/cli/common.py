"""What every convcli command shares: the two consoles, error translation and
shared option decorators.  This is CLI-only code: click and rich live here and
in the other ``cli*.py`` modules, nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from typing import Any, Callable

import click

from convcli.errors import ConvcliError


class CliError(click.ClickException):
    """A bad argument or input: one ``Error: ...`` line and exit status 2."""

    exit_code = 2


class Interrupted(click.ClickException):
    """Ctrl-C, SIGTERM or SIGHUP: one ``Error:`` line, exit status 128 + the signal (130 for Ctrl-C)."""

    def __init__(self, message: str, signum: int = signal.SIGINT) -> None:
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that it cleans up exactly as for Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)


#: Signals handled like Ctrl-C (SIGINT already raises KeyboardInterrupt).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _raise_terminated(signum: int, frame) -> None:
    for number in STOP_SIGNALS:  # a second signal during the clean-up ends the process at once
        signal.signal(number, signal.SIG_DFL)
    raise Terminated(signum)


def signal_of(exc: KeyboardInterrupt) -> int:
    """The signal behind an interrupt: SIGTERM/SIGHUP for :class:`Terminated`, else SIGINT."""
    return getattr(exc, "signum", int(signal.SIGINT))


def interrupted_message(exc: KeyboardInterrupt) -> str:
    """``"interrupted"`` for Ctrl-C, ``"terminated by SIGTERM"`` for the others."""
    signum = signal_of(exc)
    return "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"


@contextlib.contextmanager
def stop_signals_as_interrupts():
    """While the block runs, SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt).

    Only in the main thread (where Python runs signal handlers), and not for a
    signal that was ignored when convcli started (``nohup`` ignores SIGHUP);
    the previous handlers come back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _raise_terminated) for number in STOP_SIGNALS
                if signal.getsignal(number) is not signal.SIG_IGN}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def one_blas_thread() -> None:
    """Have numpy load OpenBLAS with one thread, unless the user set ``OPENBLAS_NUM_THREADS`` (call it first).

    convcli.layers runs its own threads, each with one-thread BLAS; OpenBLAS's
    own extra threads then only spin after each product: 0.1 s of CPU in a
    4096x4096 ``convolve``, as much in a 25,000-map ``filters render``, which a
    busy machine takes from the PNG encoder's threads.  The wall time on an idle
    machine is the same.  No effect once numpy is loaded.
    """
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the core's :class:`ConvcliError` (and unreadable files) into one ``Error:`` line.

    Ctrl-C, SIGTERM and SIGHUP stop the command the same way: the exception
    unwinds through every ``with`` block (temporary files are removed, writer
    threads stopped), then one ``Error: interrupted`` line and exit status
    128 + the signal (130, 143, 129), instead of click's "Aborted!" and 1.
    Real bugs (any other exception) still show their traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with stop_signals_as_interrupts():
                return func(*args, **kwargs)
        except ConvcliError as exc:
            raise CliError(str(exc)) from exc
        except KeyboardInterrupt as exc:
            raise Interrupted(interrupted_message(exc), signal_of(exc)) from None
        except BrokenPipeError:  # e.g. "convcli filters list | head -1"
            silence_stdout()
            raise CliError("cannot write to stdout: the program reading it has exited (broken pipe)") from None
        except OSError as exc:  # file system trouble the core did not anticipate
            where = f" '{exc.filename}'" if getattr(exc, "filename", None) else ""
            raise CliError(f"cannot access{where}: {exc.strerror or exc}") from exc

    return wrapper


def check_stdin(label: str, stdin) -> None:
    """Refuse ``-`` as an input when ``stdin`` is closed (started with ``<&-``) or a terminal, before any work."""
    if stdin is None or getattr(stdin, "closed", False):
        raise CliError(f"{label} '-' reads image bytes from stdin, which is closed; pipe a file in")
    if stdin.isatty():
        raise CliError(f"{label} '-' reads image bytes from stdin, which is a terminal; pipe a file in")


def silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's last flush at exit cannot fail (and print) again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):  # no real stdout (tests, closed): nothing to silence
        pass


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
