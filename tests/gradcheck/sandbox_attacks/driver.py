"""Run one attack script in a Sandbox, as convcli would, and print what happened as JSON lines.

``python driver.py ATTACK SECONDS [ARGS...]``: receive messages until the
child ends or SECONDS pass (printing each), then print a summary line with the
output counts and this process's own peak memory.  Used by the tests that
measure the parent's memory or send it SIGTERM.
"""
import json
import os
import resource
import sys
import time

from convcli.gradcheck.sandbox import Sandbox, SandboxError

attack, seconds, args = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
script = os.path.join(os.path.dirname(os.path.abspath(__file__)), attack + ".py")
summary = {"type": "summary"}
with Sandbox([sys.executable, "-I", script, *args]) as box:
    print(json.dumps({"type": "started", "pid": box.pid, "root": str(box.root)}), flush=True)
    deadline = time.monotonic() + seconds
    try:
        while True:
            print(json.dumps(box.receive(deadline=deadline)), flush=True)
    except SandboxError as exc:
        summary["ended"] = type(exc).__name__
output = box.output
summary.update(bytes=output.bytes_seen, kept=len(output.kept), dropped=output.dropped_lines, cut=output.cut_lines)
summary["longest_kept"] = max(map(len, output.kept), default=0)
summary["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(summary), flush=True)
