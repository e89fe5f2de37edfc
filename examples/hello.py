#!/usr/bin/env python3
"""Hello file system under trio: ``python examples/hello.py MOUNTPOINT``; Ctrl-C unmounts."""

from __future__ import annotations

from _cli import parse_args, serve
from _hello_fs import HelloFS


def main() -> None:
    serve(HelloFS(), parse_args(__doc__ or ""), "hello")


if __name__ == "__main__":
    main()
