#!/usr/bin/env python3
"""How often a lookup answered across a change leaves the old state cached, at random timing.

    python bench/fill_race.py [--rounds 1000] [--src SRC]

Each round: a file the kernel never saw is looked up by a client thread (``os.stat``); the
handler reads its attributes, then waits 0-2 ms (a store's round trip); meanwhile, after a
random 0-2 ms, the test changes the file's size and calls ``invalidate_inode`` (ENOENT when
the kernel has nothing yet). After the client's stat returned and one kernel clock tick, a
second stat, by a separate process (``stat -c %s``), must show the new size: if it shows
the old one, the kernel cached the old state for the whole timeout (an hour). ``--src`` runs
another source tree (e.g. a ``git worktree`` of a commit before race-free fills, built in
place) for the comparison.
"""

from __future__ import annotations

import argparse
import os
import random
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--src", default=str(ROOT / "src"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    sys.path.insert(1, str(ROOT))
    import trio

    import pyfuse3
    from pyfuse3.testing import mounted
    from tests.memfs import MemFS, Node

    class SlowFS(MemFS):
        async def lookup(self, parent_inode: object, name: object,
                         ctx: object) -> pyfuse3.EntryAttributes:
            answer = await super().lookup(parent_inode, name, ctx)  # read the store ...
            await trio.sleep(random.uniform(0, 0.002))             # ... and its round trip
            return answer

    rng = random.Random(args.seed)
    ops = SlowFS(timeout=3600)
    stale = enoent = 0
    with mounted(ops) as fs:
        assert fs.mount is not None
        for i in range(args.rounds):
            name = f"f{i}"
            ino = ops.add(pyfuse3.ROOT_INODE, name.encode(),
                          Node(stat.S_IFREG | 0o644, data=b"old")).st_ino
            client = threading.Thread(target=os.stat, args=(fs.path(name),))
            client.start()
            time.sleep(rng.uniform(0, 0.002))
            ops.nodes[ino].data = b"new and longer"
            try:
                fs.mount.invalidate_inode(ino)
            except FileNotFoundError:
                enoent += 1
            client.join(10)
            time.sleep(0.02)  # one kernel tick: a timeout of 0 has run out
            seen = subprocess.run(["stat", "-c", "%s", fs.path(name)], capture_output=True,
                                  text=True, timeout=10, check=True).stdout
            stale += int(seen) == 3
    print(f"{args.rounds} rounds ({args.src}): {stale} left stale for the timeout; "
          f"the invalidation found nothing cached in {enoent}")


if __name__ == "__main__":
    main()
