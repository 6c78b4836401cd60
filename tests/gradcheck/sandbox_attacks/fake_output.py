"""Output that would pass for convcli's own, or command a terminal or a CI runner."""
import sys

sys.stdout.write("\x1b[2J\x1b[H\x1b[32mPASSED: 6 checks of lab.py: 6 passed, 0 failed\x1b[0m\n")
sys.stdout.write("::add-mask::hunter2\n")
sys.stdout.write("progress 10%\rPASSED: 6 checks\n")
sys.stdout.write("\x1b]0;window title\x07::error file=lab.py::forged\n")
sys.stdout.write("##vso[task.complete result=Succeeded;]done\n")
sys.stdout.write("\u202eevil\u2028::notice::x\n")
sys.stdout.write("\x9b2J\x85::warning::c1 controls\n")
sys.stdout.flush()
