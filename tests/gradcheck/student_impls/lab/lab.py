"""The lab's own code, copied verbatim from conv-lab.md (cells 1, 2, 5 and 10).

Known bugs, which `convcli gradcheck` must report:
- dot_backward ignores its upstream gradient `da`;
- conv_backward does not scale `dw` by `dA` (its `dX` is right);
- conv_forward only handles 3x3 kernels (and square images).
"""
import numpy as np


def dot_forward(x, w):
    """Perform the forward pass on a dot product
    
    Parameters
    ----------
    x : a numpy 2darray
    w : a numpy 2darray
    
    `x` and `w` are assumed to have the same shape. Think of `w` as
    a convolutional filter and `x` a little region in the image that
    is being convolved. Returns a float.
    
    """
    assert x.shape == w.shape
    return np.sum(x * w)


def dot_backward(x, w, da=None):
    """Perform the backward pass on a dot layer
    
    Parameters
    x : a numpy 2darray
    w : a numpy 2darray
    da : the gradient of the loss with respect to the output `a` of a Dot layer
    
    `x` and `w` are assumed to have the same shape. Think of `w` as
    a convolutional filter and `x` a little region in the image that
    is being convolved. Returns a dict of variable names to their
    gradients (e.g. {'x': dx, 'w', dw})
    
    """
    assert x.shape == w.shape
    da = 1 if da is None else da
    return {'x': w, 'w': x}


def conv_forward(X, w):
    """Perform a forward pass for a CNN layer
    
    Parameters
    ----------
    X : numpy 2darray with shape (N, N)
    w : numpy 2darray with shape (F, F)
    
    Assume that `w` is a 3x3 filter for simplicity.
    Returns a 2D tensor `A` with shape (N-F+1, N-F+1).
    
    """
    N, N = X.shape
    F, F = w.shape
    assert (F, F) == (3, 3)
    n = N-F + 1
    
    A = np.zeros([n, n])
    for i in range(n):
        for j in range(n):
            i_x, j_x = i+1, j+1
            i_start, i_end = i_x-1, i_x+1
            j_start, j_end = j_x-1, j_x+1
            
            x = X[i_start:i_end+1, j_start:j_end+1]
            A[i, j] = dot_forward(x, w)
    
    return A


def conv_backward(X, w, dA=None):
    """Perform a backward pass for a CNN layer
    
    Parameters
    ----------
    X : numpy 2darray with shape (N, N)
    w : numpy 2darray with shape (F, F)
    dA : pre-padded numpy 2darray with shape (N-F+1, N-F+1)
    
    """
    N, N = X.shape
    F, F = w.shape
    dA = np.ones([N-F+1, N-F+1]) if dA is None else dA
    n, n = dA.shape
    assert n == N-F+1
    
    dX, dw = np.zeros_like(X), np.zeros_like(w)
    for i in range(n):
        for j in range(n):
            i_x, j_x = i+1, j+1            
            i_start, i_end = i_x-1, i_x+1+1
            j_start, j_end = j_x-1, j_x+1+1

            x = X[i_start:i_end, j_start:j_end]
            
            dX[i_start:i_end, j_start:j_end] += dot_backward(x, w)['x'] * dA[i, j]
            dw += dot_backward(x, w)['w']
    
    return {'X': dX, 'w': dw}
