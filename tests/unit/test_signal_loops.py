"""No loop in pyfuse3 or its examples lets an exception from a signal handler past its own
``try`` or ``with``.

On Python 3.13 (CPython gh-130279) an exception raised at the back-edge of a ``while cond:``
loop, or of a loop whose body ends in ``if ...: break``, directly inside a ``try`` or
``with``, is looked up at the back-edge's own offset, which the compiler left outside that
block's exception-table entry: the ``except``, ``finally`` or ``__exit__`` never runs.
Signal handlers (Ctrl-C) run exactly there. See "Loops and signals" in docs/design.md.

The check models that lookup. It runs where a probe with a real signal shows this
interpreter loses the exception that way (3.13.0 here); 3.11.7 and 3.12.1 run the handler for
every sample loop below, and 3.10 has no exception tables: there both tests are skipped.
"""

from __future__ import annotations

import dis
import pathlib
import signal
import sys
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import pyfuse3

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11),
                                reason="exception tables (and the bug) exist from Python 3.11")

ROOT = pathlib.Path(__file__).parents[2]


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def loops_leaving_their_handler(code: types.CodeType) -> list[str]:
    """``file:line name`` of each loop back-edge that an ``except``/``finally``/``with``
    covering the loop's start does not cover (generator and comprehension bookkeeping aside:
    only handlers that begin with PUSH_EXC_INFO are the source's blocks)."""
    found = []
    for co in _code_objects(code):
        bytecode = dis.Bytecode(co)
        at = {i.offset: i for i in bytecode}
        blocks = [e for e in bytecode.exception_entries if at[e.target].opname == "PUSH_EXC_INFO"]

        def handlers(offset: int, blocks: list[Any] = blocks) -> set[int]:
            return {e.target for e in blocks if e.start <= offset < e.end}

        for ins in bytecode:
            if ins.opname == "JUMP_BACKWARD" and \
                    not handlers(ins.argval) <= handlers(ins.offset):
                line = ins.positions.lineno if ins.positions else None
                found.append(f"{co.co_filename}:{line} {co.co_qualname}")
    return list(dict.fromkeys(found))


def _of(function: Callable[..., Any]) -> list[str]:
    return loops_leaving_their_handler(function.__code__)


class _Flag:
    spinning = False
    stop = False


def _while_condition(flag: type[_Flag]) -> str:
    flag.spinning = True
    try:
        while not flag.stop:
            pass
    except KeyboardInterrupt:
        return "caught"
    return "ended"


def _while_true_break(flag: type[_Flag]) -> str:
    flag.spinning = True
    try:
        while True:
            if flag.stop:
                break
    except KeyboardInterrupt:
        return "caught"
    return "ended"


def _for_ending_in_break(flag: type[_Flag]) -> str:
    flag.spinning = True
    try:
        for _ in iter(int, 1):
            if flag.stop:
                break
    except KeyboardInterrupt:
        return "caught"
    return "ended"


def _interrupted(loop: Callable[[type[_Flag]], str]) -> str:
    """Run ``loop`` until a SIGALRM handler raises KeyboardInterrupt inside it: "caught" by
    the loop's own ``except``, or "escaped". Deterministic: the handler raises only once the
    loop spins (else the timer fires again), and the only instruction in these loops where
    Python runs signal handlers is the back-edge."""
    _Flag.spinning = False

    def on_alarm(signum: int, frame: Any) -> None:
        if _Flag.spinning:
            signal.setitimer(signal.ITIMER_REAL, 0)
            raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
        try:
            return loop(_Flag)
        except KeyboardInterrupt:
            return "escaped"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def interpreter_loses_it() -> None:
    """Skip unless a ``while cond:`` loop interrupted at its back-edge loses the exception here."""
    if _interrupted(_while_condition) != "escaped":
        pytest.skip(f"Python {sys.version.split()[0]} runs the except of a loop interrupted at "
                    f"its back-edge (no gh-130279 as the check models it)")


@pytest.mark.usefixtures("interpreter_loses_it")
@pytest.mark.parametrize("loop", [_while_condition, _while_true_break, _for_ending_in_break])
def test_what_the_check_reports_is_what_the_interpreter_does(loop: Callable[..., str]) -> None:
    """The check flags a loop exactly when a real Ctrl-C at its back-edge escapes its except
    (on 3.13.0 the first and the last escape)."""
    outcome = _interrupted(loop)
    assert outcome == ("escaped" if _of(loop) else "caught"), _of(loop)


@pytest.mark.usefixtures("interpreter_loses_it")
def test_no_loop_of_pyfuse3_its_examples_or_the_ctrl_c_storms_leaves_its_handler() -> None:
    package = pathlib.Path(pyfuse3.__file__).parent
    found = []
    for path in [*sorted(package.rglob("*.py")), *sorted((ROOT / "examples").rglob("*.py")),
                 ROOT / "tests" / "child_fs.py"]:
        found += loops_leaving_their_handler(compile(path.read_text(), str(path), "exec"))
    assert not found, "loops whose back-edge a signal's exception leaves the try/with from " \
        "(move the loop into a function of its own; docs/design.md, Loops and signals):\n" + \
        "\n".join(found)
