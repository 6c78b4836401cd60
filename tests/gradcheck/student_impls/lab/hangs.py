"""dot_backward never returns; everything else (vectorized.py's) is correct and must still be checked."""
from vectorized import conv_backward, conv_forward, dot_forward  # noqa: F401  (correct)


def dot_backward(x, w, da=1.0):
    while True:  # BUG: an infinite loop
        pass
