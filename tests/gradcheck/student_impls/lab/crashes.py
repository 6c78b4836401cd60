"""Functions that end the process: dot_backward calls os._exit, conv_forward
dereferences a null pointer (segmentation fault).  dot_forward is correct and
must still pass; conv_backward (vectorized.py's, correct) is checked against the crashing conv_forward."""
import ctypes
import os

from vectorized import conv_backward, dot_forward  # noqa: F401  (correct)


def dot_backward(x, w, da=1.0):
    os._exit(3)


def conv_forward(X, w):
    ctypes.string_at(0)  # segmentation fault
