"""The operation table is the single source: the Op enum, Operations, the stubs and the libfuse
operations table all agree with it."""

from __future__ import annotations

import errno
import inspect
from pathlib import Path

import pytest

import pyfuse3
from pyfuse3 import _callbacks, _opcodes
from pyfuse3._opcodes import OPERATIONS, Op

SRC = Path(pyfuse3.__file__).parent
# Operations methods that answer no request
NOT_REQUESTS = {"init", "init_connection", "destroy", "stacktrace"}


def test_rows_follow_the_op_enum() -> None:
    assert [o.op for o in OPERATIONS] == list(range(len(Op) - 1))  # OP_COUNT ends the enum
    assert [o.name for o in OPERATIONS] == [op.name[3:].lower() for op in Op][:-1]
    assert _opcodes.OP_NAMES == tuple(o.name for o in OPERATIONS)


def test_names_and_opcodes_are_unique() -> None:
    assert len({o.name for o in OPERATIONS}) == len(OPERATIONS)
    owners: dict[int, set[str]] = {}
    for o in OPERATIONS:
        for c in o.opcodes:
            owners.setdefault(c, set()).add(o.name)
    shared = {c: names for c, names in owners.items() if len(names) > 1}
    # the kernel's SETLK/SETLKW carry both: FUSE_LK_FLOCK selects flock()
    assert set(shared) == {32, 33} and all(n == {"flock", "setlk"} for n in shared.values())
    assert all(0 < c < 4096 for c in owners)


def test_every_handler_of_operations_is_a_row_and_the_reverse() -> None:
    handlers = {name for name, fn in inspect.getmembers(pyfuse3.Operations, inspect.isfunction)
                if not name.startswith("_") and name not in NOT_REQUESTS}
    assert handlers == {o.name for o in OPERATIONS}
    for o in OPERATIONS:
        assert inspect.iscoroutinefunction(getattr(pyfuse3.Operations, o.name)), o.name
        assert getattr(pyfuse3.Operations, o.name).__doc__, f"{o.name} has no docstring"


@pytest.mark.parametrize("row", OPERATIONS, ids=lambda o: o.name)
def test_operations_default_answers_what_the_table_says(row: _opcodes.Operation) -> None:
    handler = getattr(pyfuse3.Operations(), row.name)
    args = [None] * (len(inspect.signature(handler).parameters))
    coro = handler(*args)
    try:
        coro.send(None)
    except StopIteration:
        assert row.default == 0, f"{row.name} default does nothing, table says {row.default}"
    except pyfuse3.FUSEError as e:
        assert e.errno == row.default
        assert row.default == errno.ENOSYS
    else:  # pragma: no cover - a default that suspends
        pytest.fail(f"{row.name} default suspended")


def test_the_libfuse_table_fills_exactly_the_rows_fields() -> None:
    expected = {f for o in OPERATIONS for f in o.lowlevel} | {"init", "destroy", "retrieve_reply"}
    assert _opcodes.filled_fields(_callbacks.lowlevel_ops) == expected


def test_every_reply_kind_names_its_result() -> None:
    assert all(isinstance(o.result, str) and o.result for o in OPERATIONS)


def test_the_stubs_declare_the_table() -> None:
    stub = (SRC / "_opcodes.pyi").read_text()
    assert "OPERATIONS: tuple[Operation, ...]" in stub
    for field in _opcodes.Operation._fields:
        assert f"    {field}:" in stub
