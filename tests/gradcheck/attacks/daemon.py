"""Leave a daemon spinning at 100% CPU after the check (fork, setsid, fork), and say its pid."""
import os
import sys

import numpy as np

read, write = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write, str(os.getpid()).encode())
        os.close(write)
        while True:
            pass
    os._exit(0)
os.close(write)
print("daemon", int(os.read(read, 32)), "worker", os.getpid(), flush=True)


def dot_forward(x, w):
    return float(np.sum(x * w))


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
