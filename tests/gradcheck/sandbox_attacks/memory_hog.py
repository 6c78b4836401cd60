"""Allocate ever more memory, touching every page; report how far it got."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import send

blocks = []
try:
    while True:
        blocks.append(bytearray(64 * 2**20))  # zero-filled: the pages are really used
except MemoryError:
    send(error="MemoryError", mib=64 * len(blocks))
