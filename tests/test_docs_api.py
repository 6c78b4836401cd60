"""docs/api.md's examples run, in order, as one program (from the repository's root)."""

import contextlib
import io
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_api_examples_run(monkeypatch, tmp_path):
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 6
    source = "\n".join(blocks).replace("/tmp/convcli-api", str(tmp_path))
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, "docs/api.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[0] == "IDX ubyte 16x28x28 (gzip) 16 (28, 28) True"
    assert lines[1] == "['blur', 'box', 'edge-h'] True True"
    assert lines[2].startswith("shape 256x256  min ") and lines[3].startswith("conv check passed")
    assert lines[4] == "8 32768"
    assert sorted(os.listdir(tmp_path)) == ["gx.npy", "gx.png", "log.webp", "render"]
