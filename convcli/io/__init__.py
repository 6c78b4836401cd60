"""Files in and out: pictures, MNIST IDX, NumPy ``.npy``/``.npz``, kernels and the filter library, atomic writes.

:mod:`.images` opens any input (:func:`~convcli.io.images.open_source`) and
hands the format work to :mod:`.pictures` (Pillow), :mod:`.idx` and
:mod:`.npyfiles`; :mod:`.library` holds the named filters and :mod:`.kernels`
reads kernel names, files and inline matrices; :mod:`.files` writes files atomically and enforces
the ``--force`` rule.  It may import numpy, Pillow, :mod:`convcli.errors` and
:mod:`convcli.layers`; never :mod:`convcli.maps`, :mod:`convcli.gradcheck`,
:mod:`convcli.cli`, click or rich.
"""
