"""Ctrl-C under asyncio where nothing turns it into cancellation (Python's own SIGINT handler:
Python 3.10's asyncio.run and uvloop.run, ``loop.run_until_complete`` on any version): serve()
takes it over. Without a kernel: a coroutine decorated as serve() is stands for it; the
real ones are in tests/mount/test_edges.py (test_ctrl_c_*)."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pyfuse3._backends import ended_by_ctrl_c

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture
def loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        new = uvloop.new_event_loop()
    else:
        new = asyncio.new_event_loop()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    try:
        yield new
    finally:
        rest = asyncio.all_tasks(new)
        for task in rest:
            task.cancel()
        if rest:
            new.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        new.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)


class Served:
    """Stands for serve(): waits until cancelled, then records how it unwound and what SIGINT
    handler was installed meanwhile, and runs ``then``."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.handlers: list[Any] = []

    @ended_by_ctrl_c
    async def serve(self, name: str, then: Callable[[], None] = lambda: None) -> None:
        self.handlers.append(signal.getsignal(signal.SIGINT))
        try:
            await asyncio.sleep(3600)
        except BaseException as e:
            self.log.append((name, type(e).__name__))
            then()
            raise


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_ctrl_c_in_a_loop_callback_ends_serve_which_raises_keyboard_interrupt(
        loop: asyncio.AbstractEventLoop) -> None:
    """Python's handler raised KeyboardInterrupt in the callback, out of the loop, leaving
    serve() never unwound (or, in a worker being started, a task that never ran)."""
    served = Served()
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    task = loop.create_task(served.serve("a"))
    with pytest.raises(KeyboardInterrupt) as raised:
        loop.run_until_complete(task)
    assert served.log == [("a", "CancelledError")]
    assert raised.value.__suppress_context__  # not shown as "during CancelledError"
    assert task.done()
    assert served.handlers != [signal.default_int_handler]  # taken over while it ran
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # and given back
    served = Served()  # again: taken over anew
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(served.serve("b"))
    assert served.log == [("b", "CancelledError")]


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_two_serves_at_once_leave_ctrl_c_to_python(loop: asyncio.AbstractEventLoop) -> None:
    """A KeyboardInterrupt out of the first to unwind would stop the loop before the other
    unwound (asyncio.run's cleanup then found it half done: its mount was left to the garbage
    collector): with two, Python's handler decides, as without pyfuse3's."""
    served = Served()
    first = loop.create_task(served.serve("a"))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert served.handlers[0] is not signal.default_int_handler  # one: taken over
    second = loop.create_task(served.serve("b"))
    loop.run_until_complete(asyncio.sleep(0.01))
    assert served.handlers[1] is signal.default_int_handler  # two: given back
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    for task in (first, second):
        task.cancel()
    loop.run_until_complete(asyncio.gather(first, second, return_exceptions=True))
    assert sorted(served.log) == [("a", "CancelledError"), ("b", "CancelledError")]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    served = Served()  # and one again afterwards: taken over anew
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(served.serve("c"))
    assert served.log == [("c", "CancelledError")]


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_a_second_ctrl_c_while_serve_unwinds_raises_where_it_lands(
        loop: asyncio.AbstractEventLoop) -> None:
    """The way out of a handler that ignores cancellation, as with asyncio.run's handler."""
    after: list[bool] = []

    def second() -> None:
        signal.raise_signal(signal.SIGINT)
        after.append(True)

    served = Served()
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as raised:
        loop.run_until_complete(served.serve("a", then=second))
    assert after == []  # raised inside second(), at the signal
    assert any(entry.name == "second" for entry in raised.traceback)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_ctrl_c_after_the_loop_stopped_under_serve_is_pythons(
        loop: asyncio.AbstractEventLoop) -> None:
    """serve() left pending by a loop that stopped (a KeyboardInterrupt of the program's own out
    of run_until_complete): a Ctrl-C afterwards must not be spent cancelling it."""
    served = Served()
    loop.create_task(served.serve("a"))
    loop.run_until_complete(asyncio.sleep(0.01))  # serve() runs, then the loop stops
    assert served.handlers and served.handlers[0] is not signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert served.log == []


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_ctrl_c_is_raised_over_an_error_serve_ends_with(
        loop: asyncio.AbstractEventLoop) -> None:
    def fail() -> None:
        raise ValueError("serve's own error")

    served = Served()
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as raised:
        loop.run_until_complete(served.serve("a", then=fail))
    assert isinstance(raised.value.__cause__, ValueError)


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_a_sigint_handler_of_the_programs_own_is_left_alone(
        loop: asyncio.AbstractEventLoop) -> None:
    """As asyncio.run's of Python 3.11+ or ``loop.add_signal_handler``: theirs decides."""
    seen: list[int] = []
    outcome: BaseException | None = None
    served = Served()
    signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    task = loop.create_task(served.serve("a"))
    loop.call_later(0.01, signal.raise_signal, signal.SIGINT)
    loop.call_later(0.05, task.cancel)
    try:  # (not pytest.raises: a KeyboardInterrupt out of the test would end the session)
        loop.run_until_complete(task)
    except BaseException as e:
        outcome = e
    assert type(outcome) is asyncio.CancelledError
    assert seen == [signal.SIGINT]
    assert served.log == [("a", "CancelledError")]
    assert served.handlers[0] is not signal.default_int_handler
    assert signal.getsignal(signal.SIGINT) is served.handlers[0]


@pytest.mark.parametrize("loop", LOOPS, indirect=True)
def test_serve_on_another_thread_leaves_ctrl_c_to_the_main_thread(
        loop: asyncio.AbstractEventLoop) -> None:
    served = Served()
    outcome: list[BaseException] = []

    def in_thread() -> None:
        task = loop.create_task(served.serve("a"))
        loop.call_later(0.01, task.cancel)
        try:
            loop.run_until_complete(task)
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(timeout=30)
    assert served.handlers == [signal.default_int_handler]
    assert [type(e) for e in outcome] == [asyncio.CancelledError]
