"""A file with none of the lab's functions (the names are misspelled)."""
import numpy as np


def dot_fwd(x, w):
    return np.sum(x * w)


def convolution_forward(X, w):
    return X
