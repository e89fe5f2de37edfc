"""The public API of pyfuse3 3.4 and 3.5 is complete: names, signatures and defaults."""

from __future__ import annotations

import errno
import importlib
import inspect
import subprocess
import sys
from typing import Any

import pytest

import pyfuse3
from pyfuse3._opcodes import Interrupt

FUNCTIONS = {
    "init": "(ops, mountpoint, options=default_options)",
    "main": "(min_tasks=1, max_tasks=99)",
    "terminate": "()",
    "close": "(unmount=True)",
    "readdir_reply": "(token, name, attr, next_id)",
    "listdir": "(path)",
    "syncfs": "(path)",
    "setxattr": "(path, name, value, namespace='user')",
    "getxattr": "(path, name, size_guess=128, namespace='user')",
    "get_sup_groups": "(pid)",
    "invalidate_inode": "(inode, attr_only=False, *, offset=0, length=0)",
    "invalidate_entry": "(inode_p, name, deleted=0)",
    "invalidate_entry_async": "(inode_p, name, deleted=0, ignore_enoent=False)",
    "notify_store": "(inode, offset, data)",
}

HANDLERS = {
    "init": "(self)",
    "lookup": "(self, parent_inode, name, ctx)",
    "forget": "(self, inode_list)",
    "getattr": "(self, inode, ctx)",
    "setattr": "(self, inode, attr, fields, fh, ctx)",
    "readlink": "(self, inode, ctx)",
    "mknod": "(self, parent_inode, name, mode, rdev, ctx)",
    "mkdir": "(self, parent_inode, name, mode, ctx)",
    "unlink": "(self, parent_inode, name, ctx)",
    "rmdir": "(self, parent_inode, name, ctx)",
    "symlink": "(self, parent_inode, name, target, ctx)",
    "rename": "(self, parent_inode_old, name_old, parent_inode_new, name_new, flags, ctx)",
    "link": "(self, inode, new_parent_inode, new_name, ctx)",
    "open": "(self, inode, flags, ctx)",
    "read": "(self, fh, off, size)",
    "write": "(self, fh, off, buf)",
    "flush": "(self, fh)",
    "release": "(self, fh)",
    "fsync": "(self, fh, datasync)",
    "opendir": "(self, inode, ctx)",
    "readdir": "(self, fh, start_id, token)",
    "releasedir": "(self, fh)",
    "fsyncdir": "(self, fh, datasync)",
    "statfs": "(self, ctx)",
    "stacktrace": "(self)",
    "setxattr": "(self, inode, name, value, ctx)",
    "getxattr": "(self, inode, name, ctx)",
    "listxattr": "(self, inode, ctx)",
    "removexattr": "(self, inode, name, ctx)",
    "access": "(self, inode, mode, ctx)",
    "create": "(self, parent_inode, name, mode, flags, ctx)",
    "poll": "(self, inode, fh, poll_handle, ctx)",  # 3.5
}


def _shape(fn: object) -> str:
    """A signature without annotations, with the default_options constant named."""
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    text = str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))
    return text.replace(repr(pyfuse3.default_options), "default_options")


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_signature(name: str) -> None:
    assert _shape(getattr(pyfuse3, name)) == FUNCTIONS[name]


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_operations_handler_signature(name: str) -> None:
    method = getattr(pyfuse3.Operations, name)
    assert _shape(method) == HANDLERS[name]
    sync = name in ("init", "stacktrace")
    assert inspect.iscoroutinefunction(method) is not sync


def test_main_is_async() -> None:
    assert inspect.iscoroutinefunction(pyfuse3.main)


def test_constants() -> None:
    assert pyfuse3.ROOT_INODE == 1
    assert pyfuse3.ENOATTR == errno.ENODATA
    assert (pyfuse3.RENAME_NOREPLACE, pyfuse3.RENAME_EXCHANGE) == (1, 2)
    assert isinstance(pyfuse3.default_options, frozenset)
    assert "default_permissions" in pyfuse3.default_options
    assert pyfuse3.trio_token is None
    from importlib.metadata import version

    assert pyfuse3.__version__ == version("pyfuse3-next")  # one version source
    assert pyfuse3.UPSTREAM_API == "3.5.0"
    assert pyfuse3._NANOS_PER_SEC == 1_000_000_000


def test_types_and_classes_exist() -> None:
    for name in ("InodeT", "FileHandleT", "FileNameT", "FlagT", "ModeT", "XAttrNameT"):
        assert callable(getattr(pyfuse3, name))
    for name in ("Operations", "EntryAttributes", "FileInfo", "StatvfsData", "RequestContext",
                 "SetattrFields", "FUSEError", "ReaddirToken", "PollHandle"):
        assert isinstance(getattr(pyfuse3, name), type)
    assert pyfuse3.InodeT is int and pyfuse3.FileHandleT is int  # plain aliases in 3.5
    with pytest.raises(TypeError, match="created by pyfuse3"):
        pyfuse3.PollHandle()
    assert pyfuse3.Operations.supports_dot_lookup is True
    assert pyfuse3.Operations.enable_writeback_cache is False
    assert pyfuse3.Operations.enable_acl is False


def test_all_is_complete() -> None:
    for name in pyfuse3.__all__:
        assert hasattr(pyfuse3, name), name


def test_compat_modules() -> None:
    asyncio_mod = importlib.import_module("pyfuse3.asyncio")
    asyncio_mod.enable()
    try:
        assert pyfuse3.trio is asyncio_mod
    finally:
        asyncio_mod.disable()
    import trio

    assert pyfuse3.trio is trio
    assert importlib.import_module("pyfuse3_asyncio") is asyncio_mod
    assert importlib.import_module("_pyfuse3").Operations is pyfuse3.Operations
    assert importlib.import_module("pyfuse3._pyfuse3").Operations is pyfuse3.Operations


BEFORE_INIT = """
import pyfuse3
calls = {"terminate": pyfuse3.terminate, "invalidate_inode": lambda: pyfuse3.invalidate_inode(1),
         "notify_store": lambda: pyfuse3.notify_store(1, 0, b"x"),
         "invalidate_entry": lambda: pyfuse3.invalidate_entry(1, b"x"),
         "invalidate_entry_async": lambda: pyfuse3.invalidate_entry_async(1, b"x")}
for name, call in calls.items():
    try:
        call()
        print(name, "returned")
    except RuntimeError as e:
        print(name, "pyfuse3.init()" in str(e))
pyfuse3.close()  # nothing to close: does nothing
print("closed")
"""


def test_calls_before_init_raise_clearly() -> None:
    """In an interpreter of its own: once this one has run init() and close() (the mount
    tests, when pytest runs them first), terminate() does nothing, by design."""
    done = subprocess.run([sys.executable, "-c", BEFORE_INIT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        "terminate True", "invalidate_inode True", "notify_store True",
        "invalidate_entry True", "invalidate_entry_async True", "closed", ""], done.stdout


def test_init_rejects_bad_arguments(tmp_path: object) -> None:
    with pytest.raises(TypeError):
        pyfuse3.init(pyfuse3.Operations(), b"/tmp")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pyfuse3.init(pyfuse3.Operations(), str(tmp_path), [b"ro"])  # type: ignore[list-item]
    with pytest.raises(RuntimeError, match="mount options"):
        pyfuse3.init(pyfuse3.Operations(), str(tmp_path), ["no_such_option"])
    with pytest.raises(RuntimeError, match="cannot mount"):
        pyfuse3.init(pyfuse3.Operations(), str(tmp_path) + "/missing")


def test_errors_as_fuse_answers_an_oserror_with_its_errno() -> None:
    class FS(pyfuse3.Operations):
        async def getattr(self, inode: Any, ctx: Any = None) -> Any:
            raise FileNotFoundError(errno.ENOENT, "gone")

        async def readlink(self, inode: Any, ctx: Any) -> bytes:
            raise OSError("no errno")

        def helper(self) -> None:  # not a handler: left alone
            raise OSError(errno.EPERM, "x")

    plain = FS()
    with pytest.raises(FileNotFoundError):
        plain.getattr(1).send(None)
    pyfuse3.errors_as_fuse(FS)
    fs = FS()
    for coro, expected in ((fs.getattr(1), errno.ENOENT), (fs.readlink(1, None), errno.EIO)):
        with pytest.raises(pyfuse3.FUSEError) as info:
            coro.send(None)
        assert info.value.errno == expected
    with pytest.raises(OSError):
        fs.helper()
    with pytest.raises(TypeError, match="async def handler"):
        pyfuse3.errors_as_fuse(lambda: None)  # type: ignore[arg-type,return-value]


def _interrupt_of(ops: Any, name: str) -> int:
    """The Interrupt a session of ``ops`` applies to operation ``name``."""
    from pyfuse3._opcodes import OP_NAMES
    from pyfuse3._request import Interrupts

    interrupts = Interrupts(tuple(getattr(ops, n) for n in OP_NAMES), lambda pid: False)
    return interrupts.of(OP_NAMES.index(name))


@pytest.mark.fuse_errors_expected
def test_a_failing_caller_test_honours_the_interrupt_with_one_traceback(
        caplog: pytest.LogCaptureFixture) -> None:
    """``Interrupts.dying``, which both the INTERRUPT callback and the parked requests' path
    ask, answers True (cancel) when ``caller_dying`` raises, and logs it once."""
    from pyfuse3._opcodes import OP_NAMES
    from pyfuse3._request import Interrupts

    def broken(pid: int) -> bool:
        raise RuntimeError(f"cannot tell {pid}")

    handlers = tuple(getattr(pyfuse3.Operations(), n) for n in OP_NAMES)
    assert Interrupts(handlers, lambda pid: pid == 7).dying(7) is True
    assert Interrupts(handlers, lambda pid: pid == 7).dying(8) is False
    with caplog.at_level("ERROR", logger="pyfuse3"):
        assert Interrupts(handlers, broken).dying(42) is True
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "42" in errors[0].getMessage()
    assert errors[0].exc_info is not None and "cannot tell 42" in str(errors[0].exc_info[1])


def test_by_default_only_lock_waits_are_interruptible_by_any_signal() -> None:
    ops = pyfuse3.Operations()
    assert {name: _interrupt_of(ops, name) for name in ("lookup", "mkdir", "read", "setlk",
                                                         "flock")} == {
        "lookup": Interrupt.INTERRUPT_FATAL, "mkdir": Interrupt.INTERRUPT_FATAL,
        "read": Interrupt.INTERRUPT_FATAL, "setlk": Interrupt.INTERRUPT_ANY,
        "flock": Interrupt.INTERRUPT_ANY}


@pytest.mark.parametrize(("decorator", "mode"), [
    (pyfuse3.uninterruptible, Interrupt.INTERRUPT_NEVER),
    (pyfuse3.interruptible, Interrupt.INTERRUPT_ANY)], ids=["uninterruptible", "interruptible"])
def test_an_interrupt_mark_marks_a_copy_of_the_handler(decorator: Any, mode: int) -> None:
    class Base(pyfuse3.Operations):
        async def mkdir(self, parent_inode: Any, name: Any, mode: Any, ctx: Any) -> Any:
            return (parent_inode, name, __class__)  # zero-argument super() still works

    class FS(Base):
        mkdir = decorator(Base.mkdir)

    assert _interrupt_of(FS(), "mkdir") == mode
    assert _interrupt_of(Base(), "mkdir") == Interrupt.INTERRUPT_FATAL  # the base's stays
    assert FS.mkdir.__qualname__ == Base.mkdir.__qualname__ and FS.mkdir is not Base.mkdir
    with pytest.raises(StopIteration) as done:
        FS().mkdir(1, b"d", 0, None).send(None)
    assert done.value.value == (1, b"d", Base)

    class Wrapped(Base):  # errors_as_fuse keeps the mark; so does the reverse order
        mkdir = pyfuse3.errors_as_fuse(FS.mkdir)
        rmdir = decorator(pyfuse3.errors_as_fuse(Base.mkdir))

    assert (_interrupt_of(Wrapped(), "mkdir"), _interrupt_of(Wrapped(), "rmdir")) == (mode, mode)

    class Remarked(Base):  # the outer mark wins
        mkdir = pyfuse3.uninterruptible(pyfuse3.interruptible(Base.mkdir))

    assert _interrupt_of(Remarked(), "mkdir") == Interrupt.INTERRUPT_NEVER
    for wrong in (lambda: None, Base().mkdir, Base.mkdir.__get__):
        with pytest.raises(TypeError, match="async def handler"):
            decorator(wrong)

    @decorator  # a class: every request handler it defines, nothing else
    class Marked(Base):
        async def rmdir(self, parent_inode: Any, name: Any, ctx: Any) -> None:
            pass

        async def setlk(self, *args: Any) -> None:
            pass

        async def helper(self) -> None:
            pass

    assert [_interrupt_of(Marked(), n) for n in ("rmdir", "setlk")] == [mode, mode]
    assert not vars(Marked.helper)  # not a handler: not marked
    assert _interrupt_of(Marked(), "mkdir") == Interrupt.INTERRUPT_FATAL  # Base's, not Marked's


def test_the_testing_guide_quotes_its_example_verbatim() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    example = (root / "tests/guide/test_hellofs.py").read_text()
    assert "```python\n" + example + "```" in (root / "docs/testing.md").read_text()
