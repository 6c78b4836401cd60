"""Tests mirror the package: tests/layers, tests/io, tests/maps, tests/gradcheck, tests/cli.

The shared helpers (``helpers_images``) sit in this folder, which is put on
``sys.path`` here so every subfolder can import them.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
