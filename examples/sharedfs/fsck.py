#!/usr/bin/env python3
"""Check a sharedfs store (read only): every entry names an existing inode, link counts match
the entries, a directory's parent holds it, no page lies past its file's size, the inode
count is right, an inode without names is an orphan some mount holds open.

    python examples/sharedfs/fsck.py [--redis URL] [--prefix NAME]

Prints one line per problem. Exit status: 0 consistent, 1 problems found, 2 the store could
not be checked (Redis unreachable, no file system under the prefix). Run it while no mount
changes the store: a change in flight (a large truncate still dropping its pages, a file
unlinked while open) shows as a problem until it ends.
"""

from __future__ import annotations

import argparse
import os
import sys

import anyio
from store import fsck

from sharedfs import StartupError, connect, startup_problem


async def check(url: str, prefix: str) -> list[str]:
    async with connect(url) as client:
        if not await client.exists([f"{{{prefix}}}:id"]):
            raise StartupError(f"no sharedfs file system under prefix {prefix} at {url}")
        return await fsck(client, prefix)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis", default=os.environ.get("SHAREDFS_REDIS", "redis://localhost:6379"),
                   help="as for sharedfs.py (and the same SHAREDFS_* variables)")
    p.add_argument("--prefix", default="sharedfs")
    args = p.parse_args(argv)
    try:
        problems = anyio.run(check, args.redis, args.prefix)
    except Exception as e:
        problem = startup_problem(e, args.redis)
        if problem is None:
            raise
        print(f"fsck: {problem}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"fsck: {args.prefix}: " + (f"{len(problems)} problem(s)" if problems else
                                       "consistent"), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
