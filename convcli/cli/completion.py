"""Shell completion for filter names (click's completion protocol).

``-k``/``--kernel`` of ``convolve`` and ``filters render``, and ``filters show``,
complete the library's filter names and file paths; ``-f``/``--filter`` the
names only.  Enable completion once per shell (see the README)::

    eval "$(_CONVCLI_COMPLETE=bash_source convcli)"      # ~/.bashrc
    eval "$(_CONVCLI_COMPLETE=zsh_source convcli)"       # ~/.zshrc
    _CONVCLI_COMPLETE=fish_source convcli | source       # ~/.config/fish/completions/convcli.fish
"""

from __future__ import annotations

from click.shell_completion import CompletionItem


def _names(incomplete: str) -> list[CompletionItem]:
    from convcli.io.library import FILTERS

    return [CompletionItem(name, help=f.description) for name, f in FILTERS.items() if name.startswith(incomplete)]


def complete_filter_name(ctx, param, incomplete: str) -> list[CompletionItem]:
    """``-f sob<TAB>`` -> ``sobel-x``, ``sobel-y``."""
    return _names(incomplete)


def complete_kernel(ctx, param, incomplete: str) -> list[CompletionItem]:
    """The shell's own file completion (kernel files), then filter names starting with ``incomplete``.

    The file item comes first: click's bash script empties its list when it
    meets one and falls back to file names only when no name matched.
    """
    return [CompletionItem(incomplete, type="file")] + _names(incomplete)
