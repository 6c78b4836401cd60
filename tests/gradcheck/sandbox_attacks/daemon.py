"""Start a daemon the classic way (fork, setsid, fork) that spins forever, and report its pid."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _proto import send

read, write = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(write, f"{os.getpid()}\n".encode())
        while True:  # 100% CPU, for ever
            pass
    os._exit(0)
daemon = int(os.read(read, 64))
send(daemon=daemon, me=os.getpid())
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 3600)
