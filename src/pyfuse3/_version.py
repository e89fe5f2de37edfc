"""This package's version, and the upstream pyfuse3 API level it implements."""

__version__ = "0.9.0"

#: The upstream pyfuse3 release whose API this package implements (``import pyfuse3`` code
#: written for it runs unchanged).
UPSTREAM_API = "3.5.0"
