"""Sphinx configuration of the pyfuse3-next manual: ``make docs`` (HTML, then the doctests)."""

from __future__ import annotations

from typing import Any

import pyfuse3
from pyfuse3._opcodes import OPERATIONS

project = "pyfuse3-next"
author = "the pyfuse3-next authors"
copyright = "2026, the pyfuse3-next authors"
release = pyfuse3.__version__
version = ".".join(release.split(".")[:2])

extensions = ["sphinx.ext.autodoc", "sphinx.ext.doctest", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_theme_options = {"description": "libfuse 3 for Python under trio and asyncio",
                      "fixed_sidebar": True}
html_static_path: list[str] = []

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# The stubs (*.pyi) give the compiled modules' signatures to mypy; autodoc reads the
# signatures Cython embeds in the docstrings.
autodoc_docstring_signature = True

doctest_global_setup = "import errno, os, pyfuse3"

# Not documented on purpose: the module trio re-exported for upstream compatibility, and the
# private constant upstream's tests import.
UNDOCUMENTED = {"trio", "_NANOS_PER_SEC"}


def _public_names() -> list[str]:
    names = [f"pyfuse3.{n}" for n in pyfuse3.__all__ if n not in UNDOCUMENTED]
    handlers = [row.name for row in OPERATIONS] + ["init", "init_connection", "destroy",
                                                   "stacktrace"]
    names += [f"pyfuse3.Operations.{h}" for h in handlers]
    return names


def _check_reference_is_complete(app: Any, env: Any) -> None:
    """Warn (an error under -W) for a public name or Operations handler the manual misses."""
    from sphinx.util import logging

    if app.builder.name != "html":
        return
    documented = set(env.domaindata["py"]["objects"])
    for name in _public_names():
        if name not in documented:
            logging.getLogger(__name__).warning("the API reference does not document %s", name)


def setup(app: Any) -> None:
    app.connect("env-check-consistency", _check_reference_is_complete)
