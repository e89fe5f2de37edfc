"""Compatibility alias: pyfuse3 3.3 and older exposed this module at the top level."""

import sys

import pyfuse3._pyfuse3 as _impl

sys.modules[__name__] = _impl
