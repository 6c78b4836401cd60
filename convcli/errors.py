"""One exception type per kind of user-facing failure.

Every error the core raises on bad input is a :class:`ConvcliError`.  Its
message names the parameter, the value received and what would be accepted,
so the command line can print it as one ``Error: ...`` line.  The subclasses
that describe bad values also derive from :class:`ValueError`, so library users
can catch them the usual way.
"""


class ConvcliError(Exception):
    """Base class of every error convcli raises on purpose."""


class ShapeError(ConvcliError, ValueError):
    """Arrays whose shapes do not fit together (e.g. a kernel larger than the image)."""


class ParameterError(ConvcliError, ValueError):
    """An option with a value outside what is accepted (padding, stride, mode...)."""


class KernelError(ConvcliError, ValueError):
    """A kernel name, file or inline matrix that cannot be used."""


class ImageFormatError(ConvcliError, ValueError):
    """An input file that cannot be read as an image, IDX file or array."""


class OutputError(ConvcliError):
    """An output that cannot be written (exists without --force, missing folder...)."""


class ImplementationError(ConvcliError):
    """A user's implementation file that cannot be loaded (missing, syntax error...)."""
