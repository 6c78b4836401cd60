"""Fork up to 2,000 sleeping processes while loading (finite, for the machine's sake); say how many."""
import os
import time

import numpy as np

count = 0
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    count += 1
print("forked", count, "worker", os.getpid(), flush=True)


def dot_forward(x, w):
    return float(np.sum(x * w))


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
