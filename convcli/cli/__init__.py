"""The command line: the ``convcli`` group and one module per command, adapters over the core.

The only place click and rich are imported.  It may import every other part of
convcli; nothing imports it.  :mod:`.common` holds what the commands share
(error handling, consoles, options); :mod:`.convolve`, :mod:`.filters` (with
:mod:`.render` and :mod:`.render_arrays` for ``filters render``) and
:mod:`.gradcheck` each parse their options, call one or two core functions and
present the result.

This package's ``__init__`` is imported on every start, so it imports only click: each
subcommand lives in its own module of :mod:`convcli.cli` and is imported only when it is
invoked (or when ``--help`` lists it), which keeps ``convcli --version`` as
fast as ``python -c "import numpy"``.
"""

from __future__ import annotations

import contextlib
import importlib

import click

from convcli import __version__

#: name -> (module, attribute, one-line help shown in ``convcli --help``)
SUBCOMMANDS = {
    "convolve": ("convcli.cli.convolve", "convolve", "Apply a kernel to an image and write the activation map."),
    "filters": ("convcli.cli.filters", "filters", "List, show and batch-render the filter library."),
    "gradcheck": ("convcli.cli.gradcheck", "gradcheck", "Gradient-check convcli's layers or a student's lab code."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use.

    It also keeps usage errors (a bad option value, an unknown command) to the
    one ``Error: ...`` line every other failure gets, without click's usage
    block and hint above it; the exit status stays 2.
    """

    def make_context(self, *args, **kwargs) -> click.Context:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):
        with _one_line_usage_errors():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        """As click's, with "Did you mean 'convolve'?" for a near miss (click looks only at loaded commands)."""
        name = args[0] if args else ""
        if name in SUBCOMMANDS or ctx.resilient_parsing or name.startswith("-"):
            return super().resolve_command(ctx, args)
        raise click.exceptions.NoSuchCommand(name, possibilities=list(SUBCOMMANDS), ctx=ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module_name, attribute, _ = SUBCOMMANDS[cmd_name]
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # List the commands from the table above so that --help imports nothing heavy.
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: click >= 8.2 shows a group's help through this usage error; it needs its context.
_HELP_ERRORS = getattr(click.exceptions, "NoArgsIsHelpError", ())


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except _HELP_ERRORS:
        raise
    except click.UsageError as exc:
        exc.ctx = None  # without a context, click prints only "Error: <message>"
        raise


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="convcli")
def cli() -> None:
    """2-D convolution as taught in deep learning and image processing.

    \b
    Examples:
      convcli filters render                       # every filter on the bundled samples
      convcli convolve -k edge-h -o edges.png      # the lab's w1 on the bundled sample
      convcli gradcheck --impl lab.py --report results.xml
    """


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="convcli")
