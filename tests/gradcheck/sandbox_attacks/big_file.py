"""Write a file of the size the parent asks for; report what happened."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import receive, send

size = receive()["bytes"]
try:
    with open("big.bin", "wb") as handle:
        handle.write(b"\0" * size)
    send(result="written")
except OSError as exc:
    send(result=type(exc).__name__)
