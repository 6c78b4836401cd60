"""Try to signal the parent (a harmless SIGWINCH) and report whether the kernel let it."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import receive, send

try:
    os.kill(receive()["parent"], signal.SIGWINCH)
    send(result="sent")
except OSError as exc:
    send(result=type(exc).__name__)
