#!/usr/bin/env python3
"""Hello file system under asyncio: ``python examples/hello_asyncio.py MOUNTPOINT``."""

from __future__ import annotations

import asyncio
import signal

import pyfuse3
from _cli import mount, parse_args
from _hello_fs import HelloFS


async def serve() -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, pyfuse3.terminate)
    await pyfuse3.main()


def main() -> None:
    args = parse_args(__doc__ or "")
    mount(HelloFS(), args, "hello_asyncio")
    try:
        asyncio.run(serve())
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
