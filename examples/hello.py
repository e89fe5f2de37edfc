#!/usr/bin/env python3
"""Hello file system under trio: ``python examples/hello.py MOUNTPOINT``; Ctrl-C unmounts."""

from __future__ import annotations

import signal

import trio

import pyfuse3
from _cli import mount_options, parse_args
from _hello_fs import HelloFS


def main() -> None:
    args = parse_args(__doc__ or "")
    pyfuse3.init(HelloFS(), args.mountpoint, mount_options(args, "hello"))
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: pyfuse3.terminate())
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
