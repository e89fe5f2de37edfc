"""User code type-checks against pyfuse3 with ``mypy --strict`` (stubs + py.typed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _has_mypy() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import mypy"], capture_output=True)
    return probe.returncode == 0


needs_mypy = pytest.mark.skipif(not _has_mypy(), reason="mypy is not installed")


@needs_mypy
def test_user_code_passes_mypy_strict() -> None:
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--cache-dir=/dev/null",
                          str(ROOT / "tests/typing/user_fs.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_mypy
def test_wrong_user_code_fails_mypy(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import pyfuse3\npyfuse3.invalidate_entry(1, 'str-name')\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                          "--cache-dir=/dev/null",
                          str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 1 and "bytes" in out.stdout, out.stdout
