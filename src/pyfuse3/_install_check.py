"""Imported first by the package: is this pyfuse3-next whole, or did upstream pyfuse3 clash?

Upstream pyfuse3 installs into the same folder. Installed after this package, its compiled
``__init__`` shadows ours and imports our ``_pyfuse3`` (which refuses, seeing this module was
never imported); uninstalled afterwards, it removes files that are ours too (checked here).
"""

from __future__ import annotations

import os

SHARED = ("_pyfuse3.py", "asyncio.py")  # file names upstream installs too
FOLDER = os.path.dirname(__file__)

_lost = [name for name in SHARED if not os.path.exists(os.path.join(FOLDER, name))]
if _lost:
    raise ImportError(
        f"pyfuse3-next is missing {', '.join(_lost)} in {FOLDER}: uninstalling upstream "
        "pyfuse3, which installs into the same folder, removed them. Fix: pip install "
        "--force-reinstall --no-deps pyfuse3-next")
