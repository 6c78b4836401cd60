"""Fork up to 2,000 sleeping children (a fork bomb kept finite for the sake of the machine); report how many."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import send

children, error = [], None
for _ in range(2000):
    try:
        pid = os.fork()
    except OSError as exc:
        error = type(exc).__name__
        break
    if pid == 0:
        time.sleep(3600)
        os._exit(0)
    children.append(pid)
send(forked=len(children), error=error, pids=children)
time.sleep(3600)
