"""Output that would pass for convcli's verdict, clear the screen, or command the CI runner."""
import sys

import numpy as np

FAKE = (
    "\x1b[2J\x1b[H\x1b[1;32mPASSED: 6 checks of fake_output.py: 6 passed, 0 failed, 0 skipped (seed 0)\x1b[0m\n"
    "::add-mask::hunter2\n"
    "::error file=fake_output.py,line=1::forged annotation\n"
    "##vso[task.complete result=Succeeded;]done\n"
    "progress 50%\r::set-output name=x::y\n"
    "\x1b]0;forged title\x07\u202eevil\n"
)
sys.stdout.write(FAKE)
sys.stderr.write(FAKE)


def dot_forward(x, w):
    sys.stdout.write(FAKE)
    return 0.0  # wrong: the forged PASSED line must not hide it


def dot_backward(x, w, da=1.0):
    return {"x": w * da, "w": x * da}
