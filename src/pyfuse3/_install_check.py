"""Imported first by the package: is this pyfuse3-next whole, or did upstream pyfuse3 clash?

Upstream pyfuse3 installs into the same folder, and its compiled ``__init__`` wins over ours.
Installed before this package, it imports our ``_pyfuse3`` (which raises ``clash_error()``,
seeing this module was never imported); installed after it, it works but our ``testing``
(loaded by pytest as a plugin) raises ``clash_error()``; uninstalled, it removes files that
are ours too (checked here).
"""

from __future__ import annotations

import os

SHARED = ("_pyfuse3.py", "asyncio.py")  # file names upstream installs too
FOLDER = os.path.dirname(__file__)



def clash_error() -> ImportError:
    """The error for upstream's ``__init__`` found in our folder, with the fix."""
    return ImportError(
        f"upstream pyfuse3 and pyfuse3-next are both installed in {FOLDER}, and upstream's "
        "files shadow pyfuse3-next's. Fix: pip uninstall -y pyfuse3 pyfuse3-next && "
        "pip install pyfuse3-next")


_lost = [name for name in SHARED if not os.path.exists(os.path.join(FOLDER, name))]
if _lost:
    raise ImportError(
        f"pyfuse3-next is missing {', '.join(_lost)} in {FOLDER}: uninstalling upstream "
        "pyfuse3, which installs into the same folder, removed them. Fix: pip install "
        "--force-reinstall --no-deps pyfuse3-next")
