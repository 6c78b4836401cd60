"""The math: the layers of a conv net, forward and backward, as plain functions on arrays.

Holds the Dot layer (:mod:`.dot`), the Conv layer (:mod:`.conv`: channels,
bias, dilation, groups), the Pool layer (:mod:`.pool`: max and avg), the
Dense layer (:mod:`.affine`), exact integer correlation for whole-number
maps (:mod:`.integer`), their shared geometry (:mod:`._geometry`:
padding, strides, borders) and the private fast paths: for one-channel
images :mod:`._fastconv` (blocks, taps), :mod:`._direct`, :mod:`._matmul`,
:mod:`._separable` and :mod:`._fftconv`, chosen by the cost model of
:mod:`._dispatch`; :mod:`._channels` for channels, groups and dilation and
:mod:`._rowgrad` for the backward of layers with more kernels than channels;
:mod:`._threads` for their worker threads; :mod:`._blas` for the calls into
numpy's OpenBLAS that numpy has no function for.  Every backward sits beside
its forward, takes the forward's inputs plus the upstream gradient and
returns a dict keyed by input name.  This is the lowest layer of convcli: it may import
numpy, the standard library and :mod:`convcli.errors` only -- never scipy,
Pillow, click, rich or any other convcli subpackage.
"""

from convcli.layers._geometry import BORDERS, PADDING_NAMES, Padding, pad_widths
from convcli.layers.affine import affine_backward, affine_forward
from convcli.layers.conv import conv_backward, conv_forward, conv_forward_rows
from convcli.layers.dot import dot_backward, dot_forward
from convcli.layers.integer import INTEGER_TAPS, IntegerCorrelation
from convcli.layers.pool import pool_backward, pool_forward

__all__ = [
    "BORDERS", "PADDING_NAMES", "Padding", "pad_widths",
    "conv_forward", "conv_backward", "conv_forward_rows",
    "pool_forward", "pool_backward",
    "affine_forward", "affine_backward",
    "dot_forward", "dot_backward",
    "INTEGER_TAPS", "IntegerCorrelation",
]
