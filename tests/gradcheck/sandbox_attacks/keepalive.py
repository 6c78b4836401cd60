"""Forge keep-alive and done messages as fast as possible, for ever."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import send

while True:
    send(type="alive")
    send(type="done")
