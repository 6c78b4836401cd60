"""Planted bug: conv_backward returns its kernel gradient under the key 'W'.
Only conv_backward:w fails (no gradient for 'w').  The other functions are the correct ones of vectorized.py."""
from vectorized import conv_backward as correct_conv_backward
from vectorized import conv_forward, dot_backward, dot_forward  # noqa: F401  (correct)


def conv_backward(X, w, dA):
    grads = correct_conv_backward(X, w, dA)
    return {"X": grads["X"], "W": grads["w"]}  # BUG: the key should be 'w'
