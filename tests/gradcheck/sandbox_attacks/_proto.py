"""What every attack script shares: the protocol pipes (fds 3 and 4), standard library only."""
import json
import os

_out = os.fdopen(4, "w")
_in = os.fdopen(3)


def send(**message):
    _out.write(json.dumps(message) + "\n")
    _out.flush()


def receive():
    return json.loads(_in.readline())
