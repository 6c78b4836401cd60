"""convcli: 2-D convolution as taught in deep learning and image processing.

The core library lives in :mod:`convcli.layers` (dot and conv layers, forward
and backward), :mod:`convcli.checking` (the gradient checker),
:mod:`convcli.kernels` (the filter library), :mod:`convcli.images` (readers
and writers) and :mod:`convcli.render` (pictures of activation maps).  The
command line in :mod:`convcli.cli` is a thin adapter over them.

Importing this package is cheap on purpose: it imports nothing heavy, so that
``convcli --version`` starts as fast as ``import numpy``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
