"""Installed in the folder upstream pyfuse3 also installs into: a clear error, not a riddle.

Both packages install into ``site-packages/pyfuse3/``. Upstream installed first: its compiled
``__init__`` shadows ours and imports our ``_pyfuse3`` ("cannot import name async_wrapper").
Upstream uninstalled afterwards: its uninstall removes files that are ours too ("No module
named 'pyfuse3._pyfuse3'"). A copy of the package in a temporary folder plays each case.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyfuse3

PACKAGE = Path(pyfuse3.__file__).parent


def _import(site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "import pyfuse3"], cwd=site, text=True,
                          capture_output=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(site)})


def _copy(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "pyfuse3", ignore=shutil.ignore_patterns("*.c"))
    return site


def test_the_copy_imports(tmp_path: Path) -> None:
    """The control: an intact copy imports (and is the one imported)."""
    site = _copy(tmp_path)
    out = subprocess.run([sys.executable, "-c", "import pyfuse3; print(pyfuse3.__file__)"],
                         cwd=site, text=True, capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(site / "pyfuse3" / "__init__.py")


def test_upstream_shadowing_this_package_says_so(tmp_path: Path) -> None:
    site = _copy(tmp_path)
    # what upstream's compiled __init__ does first (a .py here: it wins over ours the same way)
    (site / "pyfuse3" / "__init__.py").write_text(
        "from pyfuse3._pyfuse3 import Operations, async_wrapper\n")
    out = _import(site)
    assert out.returncode != 0
    assert "upstream pyfuse3 and pyfuse3-next are both installed in" in out.stderr
    assert "pip uninstall -y pyfuse3 pyfuse3-next && pip install pyfuse3-next" in out.stderr
    assert "async_wrapper" not in out.stderr.splitlines()[-1]


def test_files_removed_by_upstreams_uninstall_are_named(tmp_path: Path) -> None:
    site = _copy(tmp_path)
    for name in ("_pyfuse3.py", "asyncio.py"):  # in upstream's RECORD as well
        (site / "pyfuse3" / name).unlink()
    out = _import(site)
    assert out.returncode != 0
    last = out.stderr.splitlines()[-1]
    assert "missing _pyfuse3.py, asyncio.py" in last
    assert "pip install --force-reinstall --no-deps pyfuse3-next" in last


def test_upstream_installed_over_this_package_fails_in_testing_not_later(tmp_path: Path) -> None:
    """Upstream installed after us works, but our pytest plugin must not fail as a riddle."""
    site = _copy(tmp_path)
    # upstream's __init__ and _pyfuse3.py (a .py here: it wins over ours the same way)
    (site / "pyfuse3" / "_pyfuse3.py").write_text("class Operations: pass\n")
    (site / "pyfuse3" / "__init__.py").write_text("from pyfuse3._pyfuse3 import Operations\n")
    out = subprocess.run([sys.executable, "-c", "import pyfuse3.testing.pytest_plugin"],
                         cwd=site, text=True, capture_output=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(site)})
    assert out.returncode != 0
    last = out.stderr.splitlines()[-1]
    assert "upstream pyfuse3 and pyfuse3-next are both installed in" in last
    assert "pip uninstall -y pyfuse3 pyfuse3-next && pip install pyfuse3-next" in last
