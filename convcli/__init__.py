"""convcli: 2-D convolution as taught in deep learning and image processing.

One subpackage per layer of the architecture; each imports only those above it
in this list:

- :mod:`convcli.layers`: the math, dot and conv layers forward and backward (numpy only);
- :mod:`convcli.checking`: the gradient checker (numpy only);
- :mod:`convcli.io`: reading pictures, IDX, npy/npz and kernels; atomic writes;
- :mod:`convcli.maps`: activation maps as pictures and files, batch rendering;
- :mod:`convcli.gradcheck`: checking someone's file in a child process, reports;
- :mod:`convcli.cli`: the click commands, a thin adapter (the only place click and rich live).

:mod:`convcli.errors` holds the typed errors all of them raise.

Importing this package is cheap on purpose: it imports nothing heavy, so that
``convcli --version`` starts as fast as ``import numpy``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
