"""Escape sequences and CI commands in an exception message and in the file's name for the report."""
import numpy as np


def dot_forward(x, w):
    raise ValueError("\x1b[2J\x1b[H\r\n::add-mask::hunter2\nPASSED: 6 checks\x1b]0;title\x07")


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
