"""The lab's own import line, which fails outside the course's environment."""
import numpy as np
from lib.checking import gradient_check


def dot_forward(x, w):
    return np.sum(x * w)
