"""Print without a newline: for ever, or the number of MiB in argv[1]."""
import sys

chunk = "x" * 2**20
count = int(sys.argv[1]) if len(sys.argv) > 1 else -1
while count != 0:
    sys.stdout.write(chunk)
    count -= 1
sys.stdout.flush()
