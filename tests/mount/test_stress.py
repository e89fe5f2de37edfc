"""8 client processes doing random work on the tmpfs example; every file matches a model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.fuse, pytest.mark.slow]
CLIENT = Path(__file__).resolve().parents[1] / "stress_client.py"
SECONDS = float(os.environ.get("PYFUSE3_STRESS_SECONDS", "30"))


def test_eight_clients_agree_with_their_models(mnt: Path) -> None:
    clients = [subprocess.Popen([sys.executable, str(CLIENT), str(mnt / f"client{i}"), str(i),
                                 str(SECONDS)], stdout=subprocess.PIPE, text=True)
               for i in range(8)]
    outputs = []
    try:
        for c in clients:
            out, _ = c.communicate(timeout=SECONDS + 60)
            outputs.append((c.returncode, out.strip()))
    finally:
        for c in clients:
            if c.poll() is None:
                c.kill()
                c.wait()
    assert all(rc == 0 for rc, _ in outputs), outputs
    total = sum(int(out.split()[1]) for _, out in outputs)
    assert total > 8 * 100, outputs  # the clients really worked
    print(f"{total} operations by 8 clients in {SECONDS:.0f} s: {outputs}")
