"""A missing libfuse3-dev, pkg-config or C compiler gives one clear paragraph naming the
packages, not a compiler traceback."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "setup.py", "build_ext", "--build-temp", "/tmp/x"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_missing_libfuse3_dev() -> None:
    out = build({**os.environ, "PKG_CONFIG_LIBDIR": "/nonexistent", "PKG_CONFIG_PATH": ""})
    assert out.returncode == 1
    assert "apt-get install gcc pkg-config libfuse3-dev fuse3" in out.stderr
    assert "dnf install" in out.stderr and "pacman -S" in out.stderr
    assert "libfuse3-dev is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_pkg_config(tmp_path: Path) -> None:
    (tmp_path / "python").symlink_to(sys.executable)
    assert shutil.which("pkg-config", path=str(tmp_path)) is None
    out = build({**os.environ, "PATH": str(tmp_path)})
    assert out.returncode == 1
    assert "pkg-config is not installed" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_compiler(tmp_path: Path) -> None:
    (tmp_path / "python").symlink_to(sys.executable)
    pkg_config = shutil.which("pkg-config")
    assert pkg_config is not None
    (tmp_path / "pkg-config").symlink_to(pkg_config)
    out = build({**os.environ, "PATH": str(tmp_path), "CC": "no-such-cc"})
    assert out.returncode == 1
    assert "the C compiler 'no-such-cc' was not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_every_package_directory_is_packaged() -> None:
    """A subpackage missing from pyproject's list is missing from wheels and sdists."""
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.search(r"^packages = \[(.*)\]$", text, re.M).group(1)  # type: ignore[union-attr]
                 .replace('"', "").replace(" ", "").split(","))
    src = ROOT / "src"
    found = {".".join(p.parent.relative_to(src).parts)
             for p in (src / "pyfuse3").rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    assert found == listed


def test_libfuse_version_names_the_one_library_loaded() -> None:
    """pyfuse3.LIBFUSE_VERSION is the libfuse in this process, and there is only one (3.18
    changed the soname and symbol versions: a mix with the system's 3.14 would be a trap)."""
    import pyfuse3

    maps = Path("/proc/self/maps").read_text().splitlines()
    loaded = {os.path.realpath(line.split()[-1]) for line in maps if "libfuse3" in line}
    assert len(loaded) == 1, loaded
    assert loaded.pop().endswith(f".so.{pyfuse3.LIBFUSE_VERSION}")
    assert re.fullmatch(r"3\.\d+\.\d+", pyfuse3.LIBFUSE_VERSION)
