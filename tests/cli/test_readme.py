"""The README's convolve examples run as written, and write only into their scratch folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SCRATCH = "/tmp/convcli-demo"


def example_lines(start: str, stop: str) -> list[str]:
    section = README[README.index(start) : README.index(stop)]
    blocks = re.findall(r"```\n(.*?)```", section, re.S)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_every_output_goes_to_the_scratch_folder():
    lines = example_lines("## `convcli convolve`", "## The Python API")
    outputs = [m for line in lines for m in re.findall(r"(?:-o|>)\s+(\S+)", line)]
    assert outputs and all(o == "-" or o.startswith(SCRATCH + "/") or o.startswith("~/") for o in outputs), outputs


@pytest.mark.skipif(shutil.which("convcli", path=os.path.dirname(sys.executable)) is None,
                    reason="the convcli script is not installed beside this Python")
def test_convolve_examples_run(tmp_path):
    lines = [line for line in example_lines("## `convcli convolve`", "## Shell completion") if "mkdir" not in line]
    script = "set -e\n" + "\n".join(line.replace(SCRATCH, str(tmp_path)) for line in lines) + "\n"
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    before = sorted(os.listdir(ROOT))
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(ROOT)) == before  # nothing left in the repository
    assert {"boot-edges.png", "boot-lap.png", "chelsea-log.png", "rb.npy", "trouser-ridge.npy"} <= set(
        os.listdir(tmp_path))
    assert '"kernel": "edge-h"' in done.stdout  # the --json example
