"""The package layers hold: import-linter's contracts in pyproject.toml ([tool.importlinter]) are all kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept():
    # lint-imports from the environment running the tests (import-linter is in the `test` extra)
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe is not None, f"lint-imports not found beside {sys.executable}; install the `test` extra"
    proc = subprocess.run([exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
