"""One stress client: random operations in its own directory, checked against a model.

``python tests/stress_client.py DIR SEED SECONDS`` prints a summary line and exits 1 on the first
disagreement between the mount and the model.
"""

from __future__ import annotations

import os
import random
import sys
import time


def main() -> int:
    root, seed, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    model: dict[str, bytes] = {}
    ops = 0
    deadline = time.monotonic() + seconds

    def path(name: str) -> str:
        return os.path.join(root, name)

    while time.monotonic() < deadline:
        name = f"f{rng.randrange(40)}"
        action = rng.choice(["create", "write", "write", "read", "read", "rename", "unlink"])
        ops += 1
        if action == "create":
            data = rng.randbytes(rng.randrange(0, 20_000))
            with open(path(name), "wb") as fh:
                fh.write(data)
            model[name] = data
        elif action == "write" and name in model:
            off = rng.randrange(0, len(model[name]) + 5000)
            chunk = rng.randbytes(rng.randrange(1, 9000))
            fd = os.open(path(name), os.O_WRONLY)
            try:
                os.pwrite(fd, chunk, off)
            finally:
                os.close(fd)
            old = model[name]
            old = old + bytes(max(0, off - len(old)))
            model[name] = old[:off] + chunk + old[off + len(chunk):]
        elif action == "read":
            expected = model.get(name)
            try:
                with open(path(name), "rb") as fh:
                    got = fh.read()
            except FileNotFoundError:
                got = None
            if got != expected:
                print(f"MISMATCH on read of {name} after {ops} operations")
                return 1
        elif action == "rename" and name in model:
            target = f"f{rng.randrange(40)}"
            os.rename(path(name), path(target))
            model[target] = model.pop(name)
        elif action == "unlink" and name in model:
            os.unlink(path(name))
            del model[name]
    listed = set(os.listdir(root))
    if listed != set(model):
        print(f"MISMATCH in listing: extra {listed - set(model)}, missing {set(model) - listed}")
        return 1
    for name, data in model.items():
        with open(path(name), "rb") as fh:
            if fh.read() != data:
                print(f"MISMATCH in final content of {name}")
                return 1
    print(f"OK {ops} operations, {len(model)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
