"""Write the kind of junk named in argv[1] on the protocol pipe."""
import os
import sys

junk = {
    "oversized": b'{"type": "result", "x": "' + b"a" * (3 * 2**20) + b'"}\n',
    "endless": None,
    "not_json": b"PASSED\n",
    "array": b'["pass"]\n',
    "repeated_key": b'{"type": "result", "type": "done"}\n',
    "not_utf8": b'{"type": "\xff\xfe"}\n',
    "deep": b"[" * 100000 + b"]" * 100000 + b"\n",
    "empty": b"\n",
}[sys.argv[1]]
if junk is None:
    while True:
        os.write(4, b"a" * 2**16)
os.write(4, junk)
os.write(4, b'{"type": "done"}\n')
