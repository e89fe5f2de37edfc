"""sharedfs's store against a real redis-server, without a mount: every change is atomic,
logged once with the next sequence number, and bad input gets an errno. (One test, marked
fuse, gives the change-log follower a real Mount whose serving ended.)"""

from __future__ import annotations

import errno
import os
import random
import stat
import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest

# (conftest puts examples/sharedfs on sys.path)
import store as store_module
from store import MAX_SIZE, PAGE, StaleNames, Store, StoreError

import pyfuse3
import sharedfs as sharedfs_module
from sharedfs import Follower, SharedFS, connect

from .conftest import RedisServer

REG, DIR = stat.S_IFREG | 0o644, stat.S_IFDIR | 0o755


def run(redis: RedisServer, prefix: str, fn: Callable[..., Awaitable[Any]],
        backend: str = "trio") -> Any:
    async def main() -> Any:
        async with connect(redis.url) as client:
            store = Store(client, prefix)
            await store.init(0, 0)
            return await fn(store)

    return anyio.run(main, backend=backend)


async def records(store: Store) -> list[dict[bytes, bytes]]:
    return [e.field_values for e in await store.client.xrange(store.log_key)]


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_each_change_is_logged_once_in_sequence(redis: RedisServer, prefix: str,
                                                backend: str) -> None:
    async def body(s: Store) -> list[bytes]:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        await s.write(f, 0, b"hello")
        await s.setattr(f, size=2)
        await s.setattr(f, mode=0o600)
        await s.link(f, d, b"hard")
        await s.rename(1, b"f", d, b"moved", 0)
        await s.setxattr(f, b"user.x", b"1")
        await s.unlink(d, b"hard")
        with pytest.raises(StoreError) as e:
            await s.unlink(d, b"hard")  # a failed change logs nothing
        assert e.value.errno == errno.ENOENT
        recs = await records(s)
        assert [int(r[b"s"]) for r in recs] == list(range(1, len(recs) + 1))
        assert {r[b"m"] for r in recs} == {s.mount_id.encode()}
        assert await s.log_position() == ((await s.client.xrange(s.log_key))[-1].identifier,
                                          len(recs))
        return [r[b"k"] for r in recs]

    assert run(redis, prefix, body, backend) == [b"c", b"c", b"w", b"t", b"a", b"c", b"r",
                                                 b"a", b"u"]


def test_mknod_answers_what_it_stored_and_a_missing_name_is_none(redis: RedisServer,
                                                                  prefix: str) -> None:
    """mknod's reply is built from what it set, without reading the inode or its directory
    back: they must be the stored attributes of both, for a file, a directory made in a
    setgid directory (group and setgid bit from there; the directory's link count up) and a
    symlink. A lookup of a name that is not there answers None (a nil reply, no error), and
    of one in a file ENOTDIR."""
    async def body(s: Store) -> None:
        sg = (await s.mknod(1, b"sg", DIR | stat.S_ISGID, 0, 0, 4242))[0].int("ino")
        made = []
        for parent, name, mode, target in ((1, b"f", REG, b""), (sg, b"d", DIR, b""),
                                           (1, b"l", stat.S_IFLNK | 0o777, b"there")):
            before = await s.getattr(parent)
            a, d = await s.mknod(parent, name, mode, 0, 1000, 1000, target, hold=mode == REG)
            assert dict(d) == dict(await s.getattr(parent)), name
            assert d.version() == before.version() + 1 and d["mtime"] == d["ctime"] != \
                before["mtime"]
            assert d.int("nlink") == before.int("nlink") + (mode == DIR)
            made.append(a)
        for a in made:
            assert dict(a) == dict(await s.getattr(a.int("ino")))
        f, d = made[0], made[1]
        assert [f.int(k) for k in ("mode", "nlink", "uid", "gid", "size", "blocks")] == \
            [REG, 1, 1000, 1000, 0, 0]
        assert d.int("gid") == 4242 and d.int("mode") == DIR | stat.S_ISGID
        assert d.int("nlink") == 2 and d.int("parent") == sg
        assert made[2]["target"] == b"there" and made[2].int("size") == 5
        assert await s.lookup(1, b"nothing") is None
        found = await s.lookup(1, b"f")
        assert found is not None and dict(found) == dict(made[0])
        with pytest.raises(StoreError) as e:
            await s.lookup(made[0].int("ino"), b"x")
        assert e.value.errno == errno.ENOTDIR

    run(redis, prefix, body)


def test_a_create_in_a_directory_with_a_corrupt_link_count_changes_nothing(
        redis: RedisServer, prefix: str) -> None:
    """Every check comes before the first write: a directory whose link count does not parse
    gets EIO for a new subdirectory, and nothing of it is left (it used to get the entry and
    the inode, and the EIO); a version that does not parse starts again from 1."""
    async def body(s: Store) -> None:
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        count, ino = await s.count(), await s.client.get(f"{s.prefix}:ino")
        await s.client.hset(f"{s.prefix}:i:{d}", {"nlink": "two"})
        with pytest.raises(StoreError) as e:
            await s.mknod(d, b"sub", DIR, 0, 0, 0)
        assert e.value.errno == errno.EIO
        assert await s.lookup(d, b"sub") is None
        assert (await s.count(), await s.client.get(f"{s.prefix}:ino")) == (count, ino)
        await s.client.hset(f"{s.prefix}:i:{d}", {"nlink": "2", "v": "garbage"})
        assert (await s.mknod(d, b"sub", DIR, 0, 0, 0))[1].version() == 1

    run(redis, prefix, body)


def test_two_sharedfs_versions_on_one_redis_each_call_their_own_function(
        redis: RedisServer, prefix: str) -> None:
    """Mounts of two sharedfs versions share a Redis: each loads its library (named by its
    store.lua's text) and calls its own function, also after the other's library was deleted
    (FUNCTION DELETE) and its own reloaded. The second version here answers statfs with a
    number of its own, which shows whose function ran."""
    from lane import Lane

    old = "elseif op == 'statfs' then\n  return {redis.call('GET', P .. ':count') or '0'}"
    assert old in store_module.LUA
    lua = store_module.LUA.replace(old, "elseif op == 'statfs' then\n  return {'424242'}")
    function, library = store_module.library_of(lua)

    async def body(s: Store) -> None:
        other = Store(s.client, s.prefix[1:-1])
        other.lane = Lane(s.client, library=library)
        await other.init(0, 0)
        f = (await other.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")  # one file system
        assert (await s.getattr(f)).int("ino") == f
        assert await s.count() == 2 and await other.count() == 424242
        names = {lib[1] for lib in await s.lane.command("FUNCTION", "LIST")}
        assert {store_module.FUNCTION.encode(), function.encode()} <= names
        await s.lane.command("FUNCTION", "DELETE", store_module.FUNCTION)
        assert await other.count() == 424242  # the other version's library stays
        assert await s.count() == 2  # reloaded
        await s.lane.command("FUNCTION", "DELETE", function)
        assert await s.count() == 2 and await other.count() == 424242

    run(redis, prefix, body)


def test_content_matches_a_model(redis: RedisServer, prefix: str) -> None:
    """Random writes, truncates, hole punches, zero ranges and copies over page boundaries."""
    rng = random.Random(7)

    async def body(s: Store) -> None:
        a = (await s.mknod(1, b"a", REG, 0, 0, 0))[0].int("ino")
        b = (await s.mknod(1, b"b", REG, 0, 0, 0))[0].int("ino")
        model = {a: bytearray(), b: bytearray()}
        for step in range(400):
            ino = rng.choice([a, b])
            m = model[ino]
            off = rng.randrange(0, 6 * PAGE)
            n = rng.randrange(0, 2 * PAGE)
            op = rng.choice(["write", "write", "truncate", "punch", "zero", "copy"])
            if op == "write":
                data = rng.randbytes(n)
                await s.write(ino, off, data)
                m.extend(bytes(max(0, off + n - len(m))))
                m[off:off + n] = data
            elif op == "truncate":
                await s.setattr(ino, size=off)
                del m[off:]
                m.extend(bytes(off - len(m)))
            elif op in ("punch", "zero"):
                await s.fallocate(ino, 0x03 if op == "punch" else 0x10, off, n)
                end = min(off + n, len(m)) if op == "punch" else off + n
                m.extend(bytes(max(0, end - len(m))))
                m[off:end] = bytes(max(0, end - off))
            else:
                other = b if ino == a else a
                src = model[other]
                done = await s.copy(other, off, ino, off // 2, n)
                want = max(0, min(n, len(src) - off))
                assert done == want
                if want:
                    m.extend(bytes(max(0, off // 2 + want - len(m))))
                    m[off // 2:off // 2 + want] = src[off:off + want]
            for i in (a, b):
                size = (await s.getattr(i)).int("size")
                assert size == len(model[i]), (step, op)
            if step % 20 == 0 or step == 399:
                for i in (a, b):
                    assert await s.read(i, 0, 10 * PAGE) == bytes(model[i]), (step, op)
                    start = rng.randrange(0, 7 * PAGE)
                    assert await s.read(i, start, 3000) == bytes(model[i][start:start + 3000])

    run(redis, prefix, body)


def test_holes_and_seek(redis: RedisServer, prefix: str) -> None:
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        big = 999_999_999_999_999  # above 2^49: exact only as decimal strings in Lua
        await s.setattr(f, size=big)
        await s.write(f, big - 3, b"end")
        a = await s.getattr(f)
        assert (a.int("size"), a.int("blocks")) == (big, 8)
        assert await s.read(f, big - 3, 100) == b"end"
        assert await s.seek(f, 0, 3) == (big - 3) // PAGE * PAGE
        assert await s.seek(f, 0, 4) == 0
        with pytest.raises(StoreError) as e:
            await s.seek(f, big, 3)
        assert e.value.errno == errno.ENXIO

    run(redis, prefix, body)


async def used_memory(s: Store) -> int:
    return int((await s.client.info("memory"))["used_memory"])  # type: ignore[arg-type]


def test_redis_memory_per_megabyte_of_data(redis: RedisServer, prefix: str) -> None:
    """Random data written in aligned 128 KiB writes and in unaligned small ones costs Redis
    at most 1.1 bytes per byte (1.27 when each 4 KiB page was one value), and all of it goes
    with the file."""
    rng = random.Random(5)
    mib = 1 << 20

    async def body(s: Store) -> tuple[float, int]:
        before = await used_memory(s)
        f = (await s.mknod(1, b"seq", REG, 0, 0, 0))[0].int("ino")
        g = (await s.mknod(1, b"small", REG, 0, 0, 0))[0].int("ino")
        for off in range(0, 6 * mib, 128 << 10):
            await s.write(f, off, rng.randbytes(128 << 10))
        for off in range(0, 2 * mib, 1000):  # every page written in pieces, unaligned
            await s.write(g, off, rng.randbytes(1000))
        cost = (await used_memory(s) - before) / (8 * mib + 1000 - 2 * mib % 1000)
        for name in (b"seq", b"small"):
            await s.unlink(1, name)
        left = await s.client.exists([f"{s.prefix}:{k}:{i}" for k in "ict" for i in (f, g)])
        return cost, left

    cost, left = run(redis, prefix, body)
    assert cost <= 1.1 and left == 0, (cost, left)


def test_one_write_of_many_pages(redis: RedisServer, prefix: str) -> None:
    """A single write of 5,000 pages (more than one HSET's arguments can carry from Lua)."""
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        data = random.Random(4).randbytes(5000 * PAGE)
        await s.write(f, 0, data)
        assert await s.read(f, 0, len(data)) == data

    run(redis, prefix, body)


def test_pages_stored_whole_still_read_and_change(redis: RedisServer, prefix: str) -> None:
    """A store written before pages were split (each 4 KiB page one value) reads the same
    and takes partial writes, truncates and hole punches."""
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        old = bytes(range(256)) * 16 * 3
        await s.write(f, 0, old)
        key = f"{s.prefix}:c:{f}"
        await s.client.delete([f"{s.prefix}:t:{f}"])
        await s.client.hset(key, {str(p): old[p * PAGE:(p + 1) * PAGE] for p in range(3)})
        assert await s.read(f, 0, len(old)) == old
        await s.write(f, PAGE - 2, b"XXXX")  # across the first two pages
        model = bytearray(old)
        model[PAGE - 2:PAGE + 2] = b"XXXX"
        await s.fallocate(f, 0x03, 2 * PAGE, PAGE)  # punch the third page out
        model[2 * PAGE:] = bytes(PAGE)
        assert await s.read(f, 0, len(old)) == bytes(model)
        await s.setattr(f, size=PAGE + 100)
        assert await s.read(f, 0, len(old)) == bytes(model[:PAGE + 100])
        assert (await s.getattr(f)).int("blocks") == 16

    run(redis, prefix, body)


def test_open_checks_the_names_the_kernel_may_hold(redis: RedisServer, prefix: str) -> None:
    """open() with names: the ones that no longer name the inode come back in StaleNames,
    and then nothing is done (no truncate, no hold)."""
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"a", REG, 0, 0, 0))[0].int("ino")
        await s.link(f, 1, b"b")
        await s.write(f, 0, b"data")
        g = (await s.mknod(1, b"other", REG, 0, 0, 0))[0].int("ino")
        names = [(1, b"a"), (1, b"b"), (1, b"other"), (g, b"x")]
        with pytest.raises(StaleNames) as e:
            await s.open(f, truncate=True, hold=True, names=names)
        assert e.value.names == [(1, b"other"), (g, b"x")] and e.value.errno == errno.ESTALE
        assert (await s.getattr(f)).int("size") == 4
        assert await s.client.exists([f"{s.prefix}:h:{f}"]) == 0
        await s.rename(1, b"b", 1, b"c", 0)
        with pytest.raises(StaleNames) as e:
            await s.open(f, truncate=False, hold=False, names=[(1, b"a"), (1, b"b")])
        assert e.value.names == [(1, b"b")]
        a = await s.open(f, truncate=True, hold=True, names=[(1, b"a"), (1, b"c")])
        assert a.int("size") == 0 and await s.client.exists([f"{s.prefix}:h:{f}"]) == 1

    run(redis, prefix, body)


def test_with_replicas_missing_changes_fail_and_reads_do_not_wait(redis: RedisServer,
                                                                  prefix: str) -> None:
    """--wait-replicas 1 on a Redis without replicas: each change answers EIO (passing) after
    the replica timeout, and reads, including the open of a file this mount holds already
    (close-to-open's check), answer without waiting for replicas."""
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        await s.open(f, truncate=False, hold=True)
        s.replicas, s.replica_timeout_ms = 1, 300  # as --wait-replicas 1 --wait-timeout 0.3
        with anyio.fail_after(10):
            with pytest.raises(StoreError) as e:
                await s.write(f, 0, b"x")
        assert e.value.errno == errno.EIO and e.value.passing
        with anyio.fail_after(0.25):  # less than the replica timeout
            assert (await s.getattr(f)).int("ino") == f
            found = await s.lookup(1, b"f")
            assert found is not None and found.int("ino") == f
            await s.open(f, truncate=False, hold=False, names=[(1, b"f")])

    run(redis, prefix, body)


def test_a_listing_is_read_in_pages(redis: RedisServer, prefix: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A large directory is listed a page per script call (no call holds Redis for the whole
    directory): every entry present throughout comes once, also while other entries are
    created and removed between the pages; ``.`` and ``..`` first."""
    monkeypatch.setattr(store_module, "LISTDIR_PAGE", 50)

    async def body(s: Store) -> None:
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        for i in range(1000):
            await s.mknod(d, b"f%04d" % i, REG, 0, 0, 0)
        real_call, pages = s._call, 0

        async def call_then_change(op: str, *args: Any, **kw: Any) -> Any:
            nonlocal pages
            got = await real_call(op, *args, **kw)
            if op == "listdir":
                pages += 1
                await real_call("mknod", d, b"new%04d" % pages, REG, 0, 0, 0, b"", "0")
                await real_call("unlink", d, b"new%04d" % pages)
            return got

        s._call = call_then_change  # type: ignore[method-assign]
        listed = await s.listdir(d)
        s._call = real_call  # type: ignore[method-assign]
        names = [name for name, _ in listed]
        assert names[:2] == [b".", b".."] and listed[0][1].int("ino") == d
        steady = [n for n in names[2:] if n.startswith(b"f")]
        assert sorted(steady) == [b"f%04d" % i for i in range(1000)]  # each once
        assert pages >= 10, pages  # about 1000 / 50 (HSCAN's count is a hint)
        assert all(a.int("ino") for _, a in listed)

    run(redis, prefix, body)


def test_small_ranges_of_large_files_cost_the_range(redis: RedisServer, prefix: str) -> None:
    """Punching, zeroing or truncating a few pages of a file with many looks at those pages,
    not at the list of all the file's pages (HKEYS); truncating most of it copies the pages
    kept, and that, truncating to 0 and deleting free the rest outside the script (UNLINK):
    no call holds Redis for a whole large file."""
    def calls(command: str) -> int:
        stats = redis.command("INFO", "commandstats")
        for line in stats.splitlines():
            if line.startswith(f"cmdstat_{command}:"):
                return int(line.split("calls=")[1].split(",")[0])
        return 0

    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        data = random.Random(3).randbytes(500 * PAGE)
        await s.write(f, 0, data)
        before = calls("hkeys"), calls("del")
        await s.fallocate(f, 0x03, 10 * PAGE + 5, 2 * PAGE)  # punch a hole
        await s.fallocate(f, 0x10, 100 * PAGE, PAGE)  # zero a range
        await s.setattr(f, size=499 * PAGE - 7)  # truncate by a page and a bit
        await s.copy(f, 0, f, 300 * PAGE + 1, PAGE)  # copy over a range
        assert (calls("hkeys"), calls("del")) == before
        model = bytearray(data[:499 * PAGE - 7])
        model[10 * PAGE + 5:12 * PAGE + 5] = bytes(2 * PAGE)
        model[100 * PAGE:101 * PAGE] = bytes(PAGE)
        model[300 * PAGE + 1:301 * PAGE + 1] = model[:PAGE]
        assert await s.read(f, 0, 500 * PAGE) == bytes(model)
        unlinks = calls("unlink")
        await s.setattr(f, size=PAGE + 100)  # most of it: the pages kept are copied
        assert calls("hkeys") == before[0] and calls("unlink") == unlinks + 1
        assert await s.read(f, 0, 500 * PAGE) == bytes(model[:PAGE + 100])
        assert (await s.getattr(f)).int("blocks") == 16
        await s.setattr(f, size=0)
        await s.unlink(1, b"f")
        assert calls("unlink") == unlinks + 3 and calls("del") == before[1]

    run(redis, prefix, body)


@pytest.mark.parametrize("pages,stored", [(120, 60), (400, 50)])
def test_seek_through_a_file_of_many_pages_in_parts(redis: RedisServer, prefix: str,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   pages: int, stored: int) -> None:
    """SEEK_DATA and SEEK_HOLE in a file of more pages than one call looks at (4 x 8 here)
    answer what a model of its pages says, from every page's start and middle (the sparser
    file has holes longer than a call looks through: SEEK_DATA then goes by stored pages)."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)
    rng = random.Random(11)
    present = sorted(rng.sample(range(pages), stored))
    size = pages * PAGE - 100  # the last page is a hole or short

    def model(off: int, whence: int) -> int | None:
        p = off // PAGE
        if whence == os.SEEK_DATA:
            q = next((q for q in present if q >= p), None)
            return None if q is None or q * PAGE >= size else max(off, q * PAGE)
        while p in present and p * PAGE < size:
            p += 1
        return min(max(off, p * PAGE), size)

    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        await s.setattr(f, size=size)
        for q in present:
            await s.write(f, q * PAGE, b"x" * min(PAGE, size - q * PAGE))
        calls = s.calls
        for off in [k * PAGE // 2 for k in range(2 * size // PAGE + 1)]:
            for whence in (os.SEEK_DATA, os.SEEK_HOLE):
                want = model(off, whence)
                if want is None:
                    with pytest.raises(StoreError) as e:
                        await s.seek(f, off, whence)
                    assert e.value.errno == errno.ENXIO
                else:
                    assert await s.seek(f, off, whence) == want, (off, whence)
        assert s.calls - calls > 2 * (2 * size // PAGE + 1)  # in parts, not one call each

    run(redis, prefix, body)


def test_seek_data_across_a_long_hole_takes_calls_by_the_data_not_the_hole(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file of 40 pages, a hole of 2^20 pages (4 GiB) and one more page: SEEK_DATA from
    the hole finds that page in as many calls as the stored pages need (page by page it took
    2^20 / 8 calls), and answers ENXIO past it."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)
    monkeypatch.setattr(store_module, "SCAN_PAGES", 8)
    far = (1 << 20) + 40

    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        for q in range(40):
            await s.write(f, q * PAGE, b"x" * PAGE)
        await s.write(f, far * PAGE + 10, b"end")
        calls = s.calls
        assert await s.seek(f, 40 * PAGE + 5, os.SEEK_DATA) == far * PAGE
        assert await s.seek(f, 3, os.SEEK_DATA) == 3  # data where it starts: one call
        assert await s.seek(f, far * PAGE + 1, os.SEEK_DATA) == far * PAGE + 1
        assert s.calls - calls < 20
        assert await s.seek(f, 40 * PAGE + 5, os.SEEK_HOLE) == 40 * PAGE + 5
        await s.setattr(f, size=(far + 100) * PAGE)  # a hole at the end: no data after
        calls = s.calls
        with pytest.raises(StoreError) as e:
            await s.seek(f, (far + 1) * PAGE, os.SEEK_DATA)
        assert e.value.errno == errno.ENXIO and s.calls - calls < 10

    run(redis, prefix, body)


def test_bad_input_gets_an_errno(redis: RedisServer, prefix: str) -> None:
    async def body(s: Store) -> dict[str, int]:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        got: dict[str, int] = {}

        async def code(name: str, call: Awaitable[Any]) -> None:
            try:
                await call
            except StoreError as e:
                got[name] = e.errno

        await code("write past the limit", s.write(f, MAX_SIZE - 1, b"xx"))
        await code("truncate past the limit", s.setattr(f, size=MAX_SIZE + 1))
        await code("write a directory", s.write(d, 0, b"x"))
        await code("mkdir twice", s.mknod(1, b"d", DIR, 0, 0, 0))
        await code("rmdir non-empty", s.mknod(d, b"x", REG, 0, 0, 0))
        await code("rmdir non-empty", s.unlink(1, b"d", directory=True))
        await code("hard link a directory", s.link(d, 1, b"d2"))
        await code("lookup in a file", s.lookup(f, b"x"))
        await code("missing xattr", s.getxattr(f, b"user.none"))
        await s.client.hset(f"{s.prefix}:i:{f}", {"size": "garbage"})
        await code("corrupt size", s.read(f, 0, 10))
        await code("corrupt size in getattr", s.write(f, 0, b"x"))
        await s.client.hset(f"{s.prefix}:i:{f}", {"mode": "garbage"})
        assert (await s.getattr(d)).int("nlink") == 2  # the failures changed nothing
        await s.unlink(1, b"f")  # a corrupt record stays removable
        assert b"f" not in [n for n, _ in await s.listdir(1)]
        assert [n for n, _ in await s.listdir(d)] == [b".", b"..", b"x"]
        return got

    assert run(redis, prefix, body) == {
        "write past the limit": errno.EFBIG, "truncate past the limit": errno.EFBIG,
        "write a directory": errno.EISDIR, "mkdir twice": errno.EEXIST,
        "rmdir non-empty": errno.ENOTEMPTY, "hard link a directory": errno.EPERM,
        "lookup in a file": errno.ENOTDIR, "missing xattr": errno.ENODATA,
        "corrupt size": errno.EIO, "corrupt size in getattr": errno.EIO,
    }


def test_unlinked_open_inode_lives_until_the_last_holder(redis: RedisServer,
                                                         prefix: str) -> None:
    async def body(s: Store) -> None:
        other = Store(s.client, s.prefix.strip("{}"))  # a second mount
        f = (await s.mknod(1, b"f", REG, 0, 0, 0, hold=True))[0].int("ino")
        await other.open(f, truncate=False, hold=True)
        await s.write(f, 0, b"data")
        count = await s.count()
        await other.unlink(1, b"f")
        assert await s.read(f, 0, 10) == b"data" and await s.count() == count
        await s.unhold(f)
        assert await s.read(f, 0, 10) == b"data"  # the other mount still holds it
        # The other mount crashed (no heartbeat): the sweep frees what only it held.
        await s.heartbeat(30)
        assert await s.sweep() == 1
        assert await s.count() == count - 1
        with pytest.raises(StoreError):
            await s.getattr(f)
        assert not await s.client.keys(f"{s.prefix}:*:{f}")

    run(redis, prefix, body)


def test_concurrent_creates_of_one_name_succeed_once(redis: RedisServer, prefix: str) -> None:
    async def body(s: Store) -> None:
        stores = [Store(s.client, s.prefix.strip("{}")) for _ in range(20)]
        results: list[object] = []

        async def create(st: Store) -> None:
            try:
                results.append(await st.mknod(1, b"race", REG, 0, 0, 0))
            except StoreError as e:
                results.append(e.errno)

        async with anyio.create_task_group() as tg:
            for st in stores:
                tg.start_soon(create, st)
        assert sorted(r for r in results if isinstance(r, int)) == [errno.EEXIST] * 19
        assert (await s.getattr(1)).int("nlink") == 2
        assert await s.count() == 2

    run(redis, prefix, body)


def test_follower_turns_records_into_invalidations(redis: RedisServer, prefix: str) -> None:
    async def body(s: Store) -> None:
        fs = SharedFS(s)
        follower = Follower(fs, s.client)  # no mount: the queue is inspected, not flushed
        rec = {b"m": b"other", b"s": b"1"}
        follower.apply({**rec, b"k": b"w", b"i": b"5", b"o": b"4096", b"l": b"10"})
        follower.apply({**rec, b"k": b"t", b"i": b"6", b"o": b"100"})
        follower.apply({**rec, b"k": b"a", b"i": b"7"})
        follower.apply({**rec, b"k": b"u", b"p": b"1", b"n": b"gone", b"i": b"8"})
        follower.apply({**rec, b"k": b"r", b"p": b"1", b"n": b"a", b"q": b"2", b"o": b"b",
                        b"i": b"9", b"d": b"10", b"x": b"0"})
        inv = follower.inv
        assert inv._inodes == {5: [(4096, 4106)], 6: [(100, None)], 7: None, 1: None,
                               8: None, 2: None, 9: None, 10: None}
        assert inv._entries == {(1, b"gone"): 8, (1, b"a"): 0, (2, b"b"): 10}
        fs.track(11, 1, b"cached")
        follower.invalidate_everything()
        assert inv._entries[(1, b"cached")] == 0 and inv._inodes[11] == [(0, None)]
        # a record the follower cannot read: everything again, and following goes on
        await s.client.xadd(s.log_key, {"m": "other", "s": "1", "k": "w", "i": "garbage"})
        await s.client.xadd(s.log_key, {"m": "other", "s": "x", "k": "a", "i": "77"})
        follower.position, follower.seq = b"0-0", 0
        follower.handle(await follower.log.command("XRANGE", s.log_key, "-", "+"))
        assert follower.full_invalidations == 2 and follower.applied == 2
        assert follower.seq == 2 and inv._inodes[77] is None  # and it went on

    run(redis, prefix, body)


def test_a_change_rings_the_bells_of_the_other_followers_only(redis: RedisServer,
                                                             prefix: str) -> None:
    """Each change rings the bell of every mount following the log but the one that made it,
    once (a bell holds at most one ring); the sweep forgets a follower whose heartbeat
    expired, and its bell."""
    async def body(s: Store) -> None:
        other = Store(s.client, prefix, mount_id="other")
        await other.init(0, 0)
        third = Store(s.client, prefix, mount_id="third")
        await s.client.sadd(s.followers_key, [s.mount_id, "other", "third"])

        async def rings() -> list[int]:
            return [await s.client.llen(st.bell_key) for st in (s, other, third)]

        await s.mknod(1, b"f", REG, 0, 0, 0)
        assert await rings() == [0, 1, 1]
        await s.write((await s.lookup(1, b"f")).int("ino"), 0, b"x")  # type: ignore[union-attr]
        assert await rings() == [0, 1, 1]  # rung again: still one ring each
        await s.client.delete([other.bell_key, third.bell_key])
        await other.setattr(1, mode=0o700)
        assert await rings() == [1, 0, 1]
        await s.heartbeat(30)
        await other.heartbeat(30)  # third has none: gone
        await s.sweep()
        assert set(await s.client.smembers(s.followers_key)) == {s.mount_id.encode(), b"other"}
        assert not await s.client.exists([third.bell_key])
        await s.unfollow()
        assert await s.client.smembers(s.followers_key) == {b"other"}
        assert not await s.client.exists([s.bell_key])

    run(redis, prefix, body)


def test_the_follower_wakes_for_another_mounts_change_only(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower waits on its bell: this mount's own changes do not wake it (their records
    are read, in order, with the next other one's), another mount's change does, at once
    (its wait for the bell is a minute long here); registered again after a wait that
    timed out when something forgot it."""
    monkeypatch.setattr(sharedfs_module, "BELL_WAIT", 60.0)

    async def body(s: Store) -> None:
        fs = SharedFS(s)
        follower = Follower(fs, s.client, position=await s.log_position())
        rounds: list[int] = []
        real = follower.log.pipeline

        async def counted(*commands: Any) -> Any:
            got = await real(*commands)
            rounds.append(commands[0][0])
            return got

        follower.log.pipeline = counted  # type: ignore[method-assign]

        async def no_mount_to_flush() -> None:
            pass

        follower.flush = no_mount_to_flush  # type: ignore[method-assign]
        other = Store(s.client, prefix, mount_id="other")
        await other.init(0, 0)
        async with anyio.create_task_group() as tg:
            tg.start_soon(follower.follow)
            with anyio.fail_after(10):
                while not rounds:  # registered and read the log: now waiting on its bell
                    await anyio.sleep(0.01)
            for k in range(20):
                await s.mknod(1, b"f%d" % k, REG, 0, 0, 0)
            await other.mknod(1, b"g", REG, 0, 0, 0)
            with anyio.fail_after(10):
                while follower.applied < 1:
                    await anyio.sleep(0.01)
            assert rounds == ["SADD", "BLPOP"], rounds  # the bell, once
            assert follower.seq == 21 and fs.follower is None
            # forgotten (a long pause, a Redis restarted): registered again once a wait
            # for the bell times out, and a bell rings again
            monkeypatch.setattr(sharedfs_module, "BELL_WAIT", 0.05)
            await s.client.srem(s.followers_key, [s.mount_id])
            await s.client.rpush(s.bell_key, [1])  # (ends the minute-long wait)
            with anyio.fail_after(10):
                while not await s.client.sismember(s.followers_key, s.mount_id):
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    run(redis, prefix, body)


def test_a_bell_key_of_another_type_fails_no_change_and_the_follower_replaces_it(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The followers' set or a bell holding another type (written by hand): changes go on,
    whole (ringing failed after the change was written, and raised an error for it), the
    sweep too, and the follower deletes such a key and registers again."""
    monkeypatch.setattr(sharedfs_module, "BELL_WAIT", 0.05)

    async def body(s: Store) -> None:
        other = Store(s.client, prefix, mount_id="other")
        await other.init(0, 0)
        await s.client.set(s.followers_key, "not a set")
        await other.mknod(1, b"a", REG, 0, 0, 0)
        await s.client.delete([s.followers_key])
        await s.client.sadd(s.followers_key, [s.mount_id])
        await s.client.set(s.bell_key, "not a list")
        await other.mknod(1, b"b", REG, 0, 0, 0)
        assert [r[b"n"] for r in await records(s) if b"n" in r] == [b"a", b"b"]
        assert await s.sweep() == 0
        fs = SharedFS(s)
        follower = Follower(fs, s.client, position=await s.log_position())

        async def no_mount_to_flush() -> None:
            pass

        follower.flush = no_mount_to_flush  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(follower.follow)
            with anyio.fail_after(10):
                while await s.client.type(s.bell_key) == b"string":
                    await anyio.sleep(0.01)
                await s.client.set(s.followers_key, "not a set")
                while await s.client.type(s.followers_key) != b"set" or \
                        not await s.client.sismember(s.followers_key, s.mount_id):
                    await anyio.sleep(0.01)
                await other.mknod(1, b"c", REG, 0, 0, 0)
                while follower.applied < 1:
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()

    run(redis, prefix, body)


async def follow(s: Store, follower: Follower) -> None:
    """The follower handles the records it has not seen (as its XREAD would)."""
    entries = await follower.log.command("XRANGE", s.log_key, "-", "+")
    follower.handle([e for e in entries if int(e[1][e[1].index(b"s") + 1]) > follower.seq])


def test_directory_attributes_from_changes_stay_coherent(redis: RedisServer,
                                                         prefix: str) -> None:
    """getattr() of a directory after a create or unlink through this mount answers from
    that change's reply, with no round trip, only while nothing can have changed it since:
    the follower drops them at another mount's change to it; a reply whose change the
    follower has already passed is not kept (a change may have gone by unseen); any other
    change of this mount started since, or one in flight when it started, makes getattr
    ask Redis."""
    ctx = pyfuse3.RequestContext()

    async def body(s: Store) -> None:
        fs = SharedFS(s)
        follower = Follower(fs, s.client, position=await s.log_position())
        fs.followed_by(follower)
        other = Store(s.client, prefix, mount_id="other")  # another mount
        await other.init(0, 0)
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        await follow(s, follower)

        async def getattr_d() -> tuple[pyfuse3.EntryAttributes, int]:
            before = s.calls
            e = await fs.getattr(d, ctx)
            calls = s.calls - before
            stored = await s.getattr(d)
            assert (e.st_mode, e.st_nlink, e.st_mtime_ns, e.st_ctime_ns) == \
                (stored.int("mode"), stored.int("nlink"), stored.int("mtime"),
                 stored.int("ctime")), "getattr answered attributes Redis no longer has"
            return e, calls

        await fs.mknod(d, b"f", REG, 0, ctx)
        assert (await getattr_d())[1] == 0  # from the create's reply
        await fs.mkdir(d, b"sub", DIR, ctx)
        assert (await getattr_d())[0].st_nlink == 3
        await fs.rmdir(d, b"sub", ctx)
        assert (await getattr_d())[1] == 0  # from the rmdir's reply
        await fs.unlink(d, b"f", ctx)
        assert (await getattr_d())[1] == 0  # and the unlink's
        w = (await fs.mknod(d, b"w", REG, 0, ctx)).st_ino
        await s.write(w, 0, b"data")  # file data: no directory changes
        assert (await getattr_d())[1] == 0
        # another mount's change, once the follower handled its record: Redis again
        await other.setattr(d, mode=0o700)
        await follow(s, follower)
        e, calls = await getattr_d()
        assert calls == 1 and stat.S_IMODE(e.st_mode) == 0o700
        # a reply the follower has already passed: another mount changed d in between
        real_mknod = s.mknod

        async def mknod_then_another_change(*args: Any, **kw: Any) -> Any:
            got = await real_mknod(*args, **kw)
            await other.setattr(d, mode=0o750)
            await follow(s, follower)
            return got

        s.mknod = mknod_then_another_change  # type: ignore[method-assign]
        await fs.mknod(d, b"g", REG, 0, ctx)
        s.mknod = real_mknod  # type: ignore[method-assign]
        e, calls = await getattr_d()
        assert calls == 1 and stat.S_IMODE(e.st_mode) == 0o750
        # another change of this mount since (one that returns no attributes of d)
        await fs.mknod(d, b"h", REG, 0, ctx)
        await fs.setxattr(d, b"user.k", b"v", ctx)  # changes d's ctime
        assert (await getattr_d())[1] == 1
        # a change of this mount in flight when the create started
        s.changing += 1
        await fs.mknod(d, b"i", REG, 0, ctx)
        s.changing -= 1
        assert (await getattr_d())[1] == 1
        # without a follower nothing is kept
        fs.follower = None
        await fs.mknod(d, b"j", REG, 0, ctx)
        assert (await getattr_d())[1] == 1

    run(redis, prefix, body)


@pytest.mark.fuse  # a real mount; the rest of this file needs only Redis
def test_a_full_invalidation_while_the_mount_is_not_serving(redis: RedisServer, prefix: str,
                                                            tmp_path: Path) -> None:
    """The follower invalidates everything (the store restarted empty) just as serving ends:
    the epoch call is refused then; the names are queued instead, and the follower goes on
    (it raised, and sharedfs exited with 1 at unmount, 1 run in 4)."""
    async def body(s: Store) -> None:
        fs = SharedFS(s)
        mount = pyfuse3.Mount(fs, str(tmp_path))
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(mount.serve)
                while mount.state != "serving":
                    await anyio.sleep(0.01)
                mount.terminate()
            assert mount.state == "stopped"  # calls that need a reader are refused now
            follower = Follower(fs, s.client, mount)
            fs.track(11, 1, b"cached")
            follower.invalidate_everything()
            assert follower.full_invalidations == 1 and follower.epochs == 0
            assert follower.inv._entries[(1, b"cached")] == 0
        finally:
            mount.close()

    run(redis, prefix, body)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_idle_hold_release_racing_an_unlink(redis: RedisServer, prefix: str,
                                            backend: str) -> None:
    """Housekeeping releases the idle holds (a and b, in one call) while an unlink of b
    releases b's: each hold is given up once and nothing raises (a KeyError here ended the
    mount process)."""
    async def body(s: Store) -> None:
        fs = SharedFS(s)
        a, b = [(await s.mknod(1, name, REG, 0, 0, 0))[0].int("ino") for name in (b"a", b"b")]
        for ino in (a, b):
            await fs.release((await fs.open(ino, os.O_RDONLY, None)).fh)  # idle holds
        gate, unholds = anyio.Event(), []
        real_unhold = s.unhold

        async def slow_unhold(*inos: int) -> None:
            unholds.extend(inos)
            await gate.wait()
            await real_unhold(*inos)

        s.unhold = slow_unhold  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(fs.release_idle, 0.0)              # housekeeping: waits on a's
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(partial(fs.release_idle, 0.0, only=b))  # the unlink of b
            await anyio.wait_all_tasks_blocked()
            gate.set()
        assert sorted(unholds) == [a, b] and not fs.held and not fs.releasing
        assert await s.client.exists([f"{prefix}:h:{a}", f"{prefix}:h:{b}"]) == 0

    run(redis, prefix, body, backend)


@pytest.mark.parametrize("racing", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_a_large_truncate_drops_in_parts(redis: RedisServer, prefix: str,
                                         monkeypatch: pytest.MonkeyPatch, racing: bool,
                                         sparse: bool) -> None:
    """Truncating a file of 200 pages to 100 pages and 100 bytes (more than 4 x 8 pages to
    drop, 8 per call here) sets the size at once and drops the pages past it in parts: the
    kept bytes, the size and the blocks are the truncate's, and no dropped byte shows again.
    ``sparse``: the 100 pages past it lie among 10,000 (dropped by scanning what is stored,
    not page by page). ``racing``: between two parts another mount writes past the new size
    (it drops the rest first): what lies between the new size and its write reads as zeros."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)
    monkeypatch.setattr(store_module, "SCAN_PAGES", 8)
    rng = random.Random(3)
    page = {p: rng.randbytes(PAGE) for p in range(100)}
    page.update({p: rng.randbytes(PAGE)
                 for p in (sorted(rng.sample(range(100, 10_000), 100)) if sparse
                           else range(100, 200))})
    new = 100 * PAGE + 100
    kept = b"".join(page[p] for p in range(100)) + page.get(100, bytes(PAGE))[:100]

    async def body(s: Store) -> None:
        other = Store(s.client, s.prefix.strip("{}"))
        await other.init(0, 0)
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        for p, data in page.items():
            await s.write(f, p * PAGE, data)
        ops: list[str] = []
        real_call = s._call

        async def call(op: str, *args: Any, **kw: Any) -> Any:
            ops.append(op)
            got = await real_call(op, *args, **kw)
            if racing and op == "drop" and ops.count("drop") == 1:
                assert (await other.getattr(f)).int("size") == new  # the size: at once
                assert await other.write(f, 150 * PAGE + 7, b"raced") == 150 * PAGE + 12
            return got

        s._call = call  # type: ignore[method-assign]
        a = await s.setattr(f, size=new)
        assert ops.count("setattr") == 1 and "g" not in a
        assert ops.count("drop") >= (2 if racing else 100 // 8)
        want = kept + (bytes(150 * PAGE + 7 - new) + b"raced" if racing else b"")
        got = await s.getattr(f)
        assert got.int("size") == len(want) and "g" not in got and "ge" not in got
        assert got.int("blocks") == (100 + (100 in page) + racing) * 8 == a.int("blocks")
        assert await s.read(f, 0, 300 * PAGE) == want
        await s.setattr(f, size=20_000 * PAGE)  # what was cut stays cut: no data after
        assert await s.read(f, 0, 300 * PAGE) == want + bytes(300 * PAGE - len(want))
        with pytest.raises(StoreError) as e:
            await s.seek(f, (len(want) // PAGE + 1) * PAGE, os.SEEK_DATA)
        assert e.value.errno == errno.ENXIO
        assert await store_module.fsck(s.client, s.prefix.strip("{}")) == []  # no stray tail

    run(redis, prefix, body)


def test_a_small_truncate_is_one_call(redis: RedisServer, prefix: str) -> None:
    """Below 4 x SEEK_PAGES pages of work the truncate is the one script call it was."""
    async def body(s: Store) -> None:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        await s.write(f, 0, b"y" * (200 * PAGE))
        calls = s.calls
        await s.setattr(f, size=100 * PAGE + 1)
        assert s.calls - calls == 1
        assert await s.read(f, 100 * PAGE - 1, 10) == b"yy"

    run(redis, prefix, body)


async def _large_file(s: Store, pages: int) -> int:
    f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
    await s.write(f, 0, b"y" * (pages * PAGE))
    return f


async def _mark(s: Store, f: int, size: int) -> None:
    """The part of a large truncate to ``size`` done before its pages are dropped (a mount
    that dies here leaves them marked)."""
    await s._call("setattr", f, "size", size, "split", 4 * store_module.SEEK_PAGES)
    assert "g" in await s.getattr(f)


def test_a_dropper_that_resumes_after_the_file_was_cut_again_drops_it_all(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mount X drops part of a truncate's pages and pauses; mount Y finishes the drop, grows
    the file again and cuts it to the same size (the same pages marked): X, going on from
    where it was, must not skip the pages written since and clear the new mark, or they
    would stay past the size and read again after a truncate up."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)

    async def body(s: Store) -> None:
        y = Store(s.client, s.prefix.strip("{}"))
        await y.init(0, 0)
        f = await _large_file(s, 200)
        new = 100 * PAGE + 100
        await _mark(s, f, new)
        cursor, mark = await s._call("drop", f, "0", 8, "", 8)  # X: the first part
        assert mark
        await y._drop(f)
        await y.write(f, 100 * PAGE, b"z" * (100 * PAGE))  # grown again, then cut again
        await _mark(y, f, new)
        while mark:  # X goes on
            cursor, mark = await s._call("drop", f, cursor, 8, mark, 8)
        await y._drop(f)  # (Y's own truncate goes on: finds what is left)
        a = await s.getattr(f)
        assert a.int("size") == new and a.int("blocks") == 101 * 8 and "g" not in a
        assert await store_module.fsck(s.client, s.prefix.strip("{}")) == []
        await s.setattr(f, size=200 * PAGE)
        assert await s.read(f, 0, 200 * PAGE) == \
            b"y" * (100 * PAGE) + b"z" * 100 + bytes(100 * PAGE - 100)

    run(redis, prefix, body)


@pytest.mark.parametrize("how", ["died", "stalled"])
def test_a_large_truncate_left_halfway_is_finished_by_the_sweep(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A mount that dies between marking a large truncate's pages and dropping them, or whose
    truncate stops there (interrupted, Redis lost), leaves them stored (and counted in
    st_blocks); fsck names them and the mount. Another mount's sweep drops them once the
    first has no heartbeat, or has dropped no part for DROP_STALE, not before."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)
    monkeypatch.setattr(store_module, "DROP_STALE", 3600.0)

    async def body(s: Store) -> None:
        other = Store(s.client, s.prefix.strip("{}"))
        await other.init(0, 0)
        await other.heartbeat(30)
        f = await _large_file(s, 200)
        await s.heartbeat(30)
        await _mark(s, f, 100 * PAGE)
        assert (await other.getattr(f)).int("blocks") == 200 * 8
        problems = await store_module.fsck(s.client, s.prefix.strip("{}"))
        assert len(problems) == 1 and f"inode {f}: 100 page(s) past its size" in problems[0]
        assert s.mount_id in problems[0]
        assert await other.sweep() == 0  # alive: its drop is its own
        assert "g" in await other.getattr(f)
        if how == "died":
            await s.client.delete([f"{s.prefix}:alive:{s.mount_id}"])
        else:
            monkeypatch.setattr(store_module, "DROP_STALE", 0.0)
            await anyio.sleep(0.01)  # (a millisecond with no part dropped is stale now)
        assert await other.sweep() == 0
        a = await other.getattr(f)
        assert a.int("blocks") == 100 * 8 and a.int("size") == 100 * PAGE and "g" not in a
        assert await store_module.fsck(s.client, s.prefix.strip("{}")) == []
        assert not await s.client.exists([f"{s.prefix}:dropping"])
        assert await other.read(f, 0, 300 * PAGE) == b"y" * (100 * PAGE)

    run(redis, prefix, body)


@pytest.mark.parametrize("when", ["setattr", "drop"])
@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_large_truncate_cancelled_halfway_still_drops_its_pages(
        redis: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch, backend: str,
        when: str) -> None:
    """A truncate whose caller is cancelled (the kernel's INTERRUPT) once its script ran (the
    reply on its way) or during the drop, finishes dropping and answers with the truncate's
    attributes: the size is set either way, and its pages must not stay for a sweep."""
    monkeypatch.setattr(store_module, "SEEK_PAGES", 8)

    async def body(s: Store) -> None:
        f = await _large_file(s, 200)
        real_call, got = s._call, []

        async def call(op: str, *args: Any, **kw: Any) -> Any:
            reply = await real_call(op, *args, **kw)
            if op == when:
                scope.cancel()
                await anyio.sleep(0)  # where Cancelled comes, unless shielded
            return reply

        s._call = call  # type: ignore[method-assign]
        with anyio.CancelScope() as scope:
            got.append(await s.setattr(f, size=100 * PAGE))
        s._call = real_call  # type: ignore[method-assign]
        a = await s.getattr(f)
        assert got == [a] and a.int("blocks") == 100 * 8 and "g" not in a
        assert await store_module.fsck(s.client, s.prefix.strip("{}")) == []

    run(redis, prefix, body, backend)


def test_fsck_finds_problems_in_every_batch(redis: RedisServer, prefix: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """fsck reads FSCK_BATCH inodes per round trip (3 here): a problem in the first, a middle
    and the last batch is found, and a consistent store has none."""
    monkeypatch.setattr(store_module, "FSCK_BATCH", 3)

    async def body(s: Store) -> list[list[str]]:
        d = (await s.mknod(1, b"d", DIR, 0, 0, 0))[0].int("ino")
        files = [(await s.mknod(d if k % 2 else 1, b"f%d" % k, REG, 0, 0, 0))[0].int("ino")
                 for k in range(10)]
        for ino in files:
            await s.write(ino, 0, b"x" * 5000)
        p = s.prefix
        found = [await store_module.fsck(s.client, p.strip("{}"))]
        await s.client.hset(f"{p}:i:{files[0]}", {"nlink": "2"})
        await s.client.hset(f"{p}:c:{files[5]}", {"7": b"stray"})
        await s.client.hset(f"{p}:d:{d}", {"ghost": "999999"})
        await s.client.hset(f"{p}:i:{files[9]}", {"size": "big"})
        found.append(sorted(await store_module.fsck(s.client, p.strip("{}"))))
        found.append([str(d), *map(str, files)])
        return found

    clean, problems, (d, *files) = run(redis, prefix, body)
    assert clean == []
    assert problems == sorted([
        f"entry b'ghost' of {d} names missing inode 999999",
        f"inode {files[0]}: nlink 2, expected 1",
        f"inode {files[5]}: 1 page(s) past its size 5000",
        f"inode {files[9]}: size is 'big', not a number"])


def test_fsck_command(redis: RedisServer, prefix: str) -> None:
    """examples/sharedfs/fsck.py: exit 2 with one line where there is nothing to check,
    0 on a consistent store, 1 with a line per problem (a corrupt number is one), 2 with one
    line if Redis is unreachable."""
    script = Path(store_module.__file__).parent / "fsck.py"

    def fsck_cli(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(script), "--redis", url, "--prefix", prefix],
                              capture_output=True, text=True, timeout=60)

    got = fsck_cli(redis.url)
    assert (got.returncode, got.stdout) == (2, ""), got.stderr
    assert got.stderr == f"fsck: no sharedfs file system under prefix {prefix} at {redis.url}\n"

    async def body(s: Store) -> int:
        f = (await s.mknod(1, b"f", REG, 0, 0, 0))[0].int("ino")
        await s.write(f, 0, b"data" * 5000)
        return f

    f = run(redis, prefix, body)
    got = fsck_cli(redis.url)
    assert (got.returncode, got.stdout, got.stderr) == (0, "", f"fsck: {prefix}: consistent\n")
    redis.command("HSET", f"{{{prefix}}}:i:{f}", "nlink", "3")
    redis.command("HSET", f"{{{prefix}}}:c:{f}", "99", "stray")
    got = fsck_cli(redis.url)
    assert got.returncode == 1 and got.stderr == f"fsck: {prefix}: 2 problem(s)\n"
    assert sorted(got.stdout.splitlines()) == [
        f"inode {f}: 1 page(s) past its size 20000", f"inode {f}: nlink 3, expected 1"]
    redis.command("HSET", f"{{{prefix}}}:i:{f}", "size", "garbage")  # reported, not a crash
    got = fsck_cli(redis.url)
    assert got.returncode == 1 and sorted(got.stdout.splitlines()) == [
        f"inode {f}: nlink 3, expected 1", f"inode {f}: size is 'garbage', not a number"]
    got = fsck_cli(f"unix://{redis.socket}.missing")
    assert got.returncode == 2 and got.stdout == "" and len(got.stderr.splitlines()) == 1
    assert got.stderr.startswith(f"fsck: cannot reach Redis at unix://{redis.socket}.missing")


def test_the_uvloop_backend_is_refused_in_one_line_without_uvloop(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--backend uvloop without the uvloop package: a usage error naming the package, not an
    ImportError traceback from inside the event loop's start."""
    import importlib.util

    import sharedfs

    argv = ["/mnt", "--redis", "unix:///r.sock", "--backend", "uvloop"]
    assert sharedfs.parse_args(argv).backend == "uvloop"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvloop" else real(name, *a))
    with pytest.raises(SystemExit):
        sharedfs.parse_args(argv)
    assert "--backend uvloop needs the uvloop package" in capsys.readouterr().err
