"""The shared state of sharedfs in Redis: one atomic script call per operation.

Layout under a key prefix ``{NAME}`` (a hash tag: every key of one file system lands in one
Redis Cluster slot): ``:i:INO`` inode attributes (hash), ``:d:INO`` directory entries (name ->
inode), ``:c:INO`` content by 4 KiB page (page index -> the page's first 4090 bytes; a
missing page is a hole) and ``:t:INO`` the rest of the pages longer than that (4096 bytes in
one value would take 5 KiB of Redis's memory, 4090 take 4 KiB),
``:x:INO`` extended attributes, ``:h:INO`` the mounts holding the inode open, ``:ino`` and
``:count`` counters, ``:orphans`` unlinked inodes still open somewhere, ``:alive:MOUNT`` a
heartbeat per mount, ``:seq`` and ``:log`` the change log: every change appends one record
(stream entry) with a sequence number in the same script, so followers can detect a gap, and
rings the ``:bell:MOUNT`` (a list of at most one element) of every other mount in
``:followers``, the mounts following the log.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import coredis
import coredis.exceptions
from lane import Lane

PAGE = 4096
MAX_SIZE = 1 << 50
NAME_MAX = 255
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536  # Linux's limit for one value
LUA = (Path(__file__).with_name("store.lua")).read_text()


def library_of(lua: str) -> tuple[str, str]:
    """The function (and library) name for a store.lua text, one per text, so mounts of two
    sharedfs versions on one Redis each call their own; and the library to load."""
    function = "sharedfs_" + hashlib.sha1(lua.encode()).hexdigest()[:16]
    return function, lua.replace("@FUNCTION@", function)


FUNCTION, LIBRARY = library_of(LUA)


class StoreError(Exception):
    """A store call failed: ``errno`` says how (EIO when Redis is unreachable or the data is
    corrupt)."""

    def __init__(self, code: int, detail: str = "", *, passing: bool = False) -> None:
        super().__init__(code, detail or os.strerror(code))
        self.errno = code
        self.passing = passing  # a state that passes (a failover, replicas catching up)


#: entries per script call of a listing (about 14 ms of Redis's time each on a slow VM)
LISTDIR_PAGE = 1000

#: pages per script call of SEEK_DATA / SEEK_HOLE in a file of more than 4 x that many pages
SEEK_PAGES = 4096
# pages per HSCAN call (it returns their bytes too: 2 MiB per call)
SCAN_PAGES = 512
# A large truncate with no part of its pages dropped for this long (its mount died, or its
# call was interrupted or lost Redis halfway) is finished by any mount's sweep.
DROP_STALE = 5.0

#: changes that never change a directory's attributes (file data; holds)
NO_DIRECTORY_CHANGE = frozenset({"write", "open", "unhold", "sweep", "fallocate", "copy",
                                 "drop"})


class StaleNames(StoreError):
    """ESTALE: these (parent, name) pairs no longer name the inode."""

    def __init__(self, names: list[tuple[int, bytes]]) -> None:
        super().__init__(errno.ESTALE)
        self.names = names


#: script operations that change nothing (a durable store need not wait for replicas)
READS = frozenset({"getattr", "lookup", "listdir", "read", "readlink", "getxattr", "listxattr",
                   "seek", "seekscan", "statfs"})


def _errno_of(e: coredis.exceptions.ResponseError) -> StoreError:
    word = str(e).split(" ", 1)[0]
    if word == "OOM":  # Redis is at maxmemory (and evicts nothing): the file system is full
        return StoreError(errno.ENOSPC, "")
    code = getattr(errno, word, None)
    if isinstance(code, int):
        return StoreError(code, str(e) if code in (errno.EIO, errno.EXDEV, errno.ESTALE) else "")
    return StoreError(errno.EIO, f"unexpected reply from Redis: {e}")


class Attributes(dict[str, bytes]):
    """One inode's attributes as stored (field name -> decimal bytes). A change that returns
    them sets ``seq``: its record's sequence number in the change log (they are as of it)."""

    seq = 0

    def int(self, key: str) -> int:
        try:
            return int(self[key])
        except (KeyError, ValueError):
            raise StoreError(errno.EIO, f"inode {self.get('ino')!r}: bad field {key}") from None

    def version(self) -> int:
        """How many times the inode changed (0 for one never changed since its creation)."""
        return self.int("v") if "v" in self else 0


def _attrs(flat: Sequence[bytes]) -> Attributes:
    return Attributes(zip(map(bytes.decode, flat[::2]), flat[1::2], strict=True))


class Store:
    """The file system's state in Redis, as seen by one mount (``mount_id``)."""

    def __init__(self, client: coredis.Redis[bytes], prefix: str, *, log_length: int = 100_000,
                 mount_id: str | None = None, give_up: float | None = 4.0,
                 replicas: int = 0, replica_timeout: float = 1.0) -> None:
        self.client = client
        self.prefix = "{" + prefix + "}"
        self.mount_id = mount_id or uuid.uuid4().hex[:16]
        self.store_id = ""  # the prefix's id seen at init(): every later call checks it
        self.log_key = self.prefix + ":log"
        self.seq_key = self.prefix + ":seq"
        self.followers_key = self.prefix + ":followers"
        self.bell_key = f"{self.prefix}:bell:{self.mount_id}"
        self.log_length = log_length
        self.lane = Lane(client, library=LIBRARY)  # the store's calls (see lane.py)
        self.calls = 0  # script calls made (round trips), for the benchmarks
        # Changes this mount started that may change a directory's attributes, and how many
        # are in flight: what a mount learns of a directory from one change's reply holds only
        # while no other change of its own can have changed it.
        self.changes_started = 0
        self.changing = 0
        # A change that reaches Redis after its caller gave up (timed out: the file system
        # answered EIO) must not be applied later: each call carries a deadline in Redis's
        # clock, ``give_up`` seconds from now, which the script checks before changing
        # anything. The offset to Redis's clock is measured at init() (None: no deadline).
        self.give_up = give_up
        self._clock_offset: int | None = None
        # Durability: with ``replicas`` > 0 a change counts as done only once that many
        # replicas have it (Redis WAIT on the connection that made it, ``replica_timeout``
        # seconds at most), so a failover cannot lose it; else the caller gets EIO.
        self.replicas = replicas
        self.replica_timeout_ms = max(1, round(replica_timeout * 1000))

    async def _call(self, op: str, *args: Any, changes: bool = True) -> Any:
        self.calls += 1
        deadline: int | str = ""
        if self._clock_offset is not None and self.give_up is not None:
            deadline = time.monotonic_ns() + self._clock_offset + int(self.give_up * 1e9)
        changes = changes and op not in READS
        counted = changes and op not in NO_DIRECTORY_CHANGE
        if counted:
            self.changes_started += 1
            self.changing += 1
        try:
            return await self.lane.fcall(
                [self.seq_key],
                [op, self.prefix, f"{self.mount_id}/{self.store_id}", self.log_length,
                 deadline, *args],
                self.replicas if changes else 0, self.replica_timeout_ms)
        except coredis.exceptions.ReplicationError:
            raise StoreError(errno.EIO, f"a change reached fewer than {self.replicas} "
                             f"replica(s) within {self.replica_timeout_ms} ms: it is on the "
                             "primary but may not survive a failover", passing=True) from None
        except coredis.exceptions.ReadOnlyError:
            # a primary demoted while this connection stayed open: find the new one
            self.client.connection_pool.disconnect()
            await self.lane.disconnect()
            raise StoreError(errno.EIO, "Redis answered as a replica (a failover is under "
                             "way); reconnecting", passing=True) from None
        except coredis.exceptions.ResponseError as e:
            raise _errno_of(e) from None
        finally:
            if counted:
                self.changing -= 1

    # ---- reads
    async def getattr(self, ino: int) -> Attributes:
        return _attrs(await self._call("getattr", ino))

    async def lookup(self, parent: int, name: bytes) -> Attributes | None:
        """The attributes of what ``name`` names in ``parent``; None: nothing."""
        flat = await self._call("lookup", parent, name)
        return None if flat is None else _attrs(flat)

    async def listdir(self, ino: int) -> list[tuple[bytes, Attributes]]:
        """Every entry of a directory with its attributes, ``.`` and ``..`` first, read in
        pages of about LISTDIR_PAGE entries (one script call each, so none holds Redis long):
        an entry present throughout is listed once; one added or removed meanwhile may or may
        not be (as readdir() allows)."""
        cursor: bytes | str = "0"
        out: list[tuple[bytes, Attributes]] = []
        seen: set[bytes] = set()
        while True:
            flat = await self._call("listdir", ino, cursor, LISTDIR_PAGE)
            cursor = flat[0]
            if not out:
                out = [(b".", _attrs(flat[1])), (b"..", _attrs(flat[2]))]
            rest = iter(flat[3:])
            for name, a in zip(rest, rest, strict=True):
                if name not in seen:  # HSCAN may return an entry twice
                    seen.add(name)
                    out.append((name, _attrs(a)))
            if cursor in (b"0", "0", 0):
                return out

    async def read(self, ino: int, off: int, size: int, crtime: bytes = b"") -> bytes:
        """``crtime``: the creation time seen at open (ESTALE if the inode number now names
        another file); empty: not checked."""
        got = await self._call("read", ino, off, size, crtime)
        fsize = int(got[0])
        end = min(off + size, fsize)
        if end <= off:
            return b""
        first = off // PAGE
        data = b"".join((page or b"").ljust(PAGE, b"\0") for page in got[1:])
        return data[off - first * PAGE:end - first * PAGE]

    async def readlink(self, ino: int) -> bytes:
        return bytes(await self._call("readlink", ino))

    async def getxattr(self, ino: int, name: bytes) -> bytes:
        return bytes(await self._call("getxattr", ino, name))

    async def listxattr(self, ino: int) -> list[bytes]:
        return list(await self._call("listxattr", ino))

    async def seek(self, ino: int, off: int, whence: int) -> int:
        """SEEK_DATA or SEEK_HOLE from ``off``: a file of more than 4 x SEEK_PAGES pages is
        looked through from ``off`` on, SEEK_PAGES pages per script call; for SEEK_DATA past
        those, its stored pages instead (a hole may be far longer than the data)."""
        at: bytes | str = ""
        while True:
            got = await self._call("seek", ino, off, whence, at, SEEK_PAGES)
            if len(got) == 1:
                return int(got[0])
            if whence == os.SEEK_DATA:
                return await self._seek_data_by_pages(ino, off)
            at = got[1]  # ('more', the page to go on from)

    async def _seek_data_by_pages(self, ino: int, off: int) -> int:
        cursor: bytes | str = "0"
        best: int | None = None
        while True:
            cursor, size, page = await self._call("seekscan", ino, off, cursor, SCAN_PAGES)
            if page and (best is None or int(page) < best):
                best = int(page)
            if cursor in (b"0", "0"):
                break
        if best is None or best * PAGE >= int(size):
            raise StoreError(errno.ENXIO, "")
        return max(off, best * PAGE)

    async def count(self) -> int:
        return int((await self._call("statfs"))[0])

    async def memory(self) -> tuple[int, int, str]:
        """Redis's used memory, its limit (``maxmemory``, else the machine's memory) in bytes,
        and its ``maxmemory-policy`` (from INFO, which managed Redis services allow)."""
        info = {(k.decode() if isinstance(k, bytes) else str(k)):
                (v.decode() if isinstance(v, bytes) else v)
                for k, v in (await self.client.info("memory")).items()}
        limit = int(info.get("maxmemory", 0)) or int(info.get("total_system_memory", 0))
        return int(info["used_memory"]), limit, str(info.get("maxmemory_policy", "noeviction"))

    async def replicas_connected(self) -> int:
        """How many replicas the Redis this client talks to has connected now."""
        info = await self.client.info("replication")
        return int(info.get("connected_slaves", 0) or 0)  # type: ignore[arg-type]

    # ---- changes
    async def init(self, uid: int, gid: int) -> None:
        """Load the function library and create the root directory if this prefix has
        none."""
        await self.lane.load()
        before = time.monotonic_ns()
        redis_now = await self.client.time()  # a datetime, microseconds
        after = time.monotonic_ns()
        self._clock_offset = round(redis_now.timestamp() * 1e6) * 1000 - (before + after) // 2
        self.store_id = ""
        self.store_id = (await self._call("init", uid, gid, uuid.uuid4().hex)).decode()

    async def mknod(self, parent: int, name: bytes, mode: int, rdev: int, uid: int, gid: int,
                    target: bytes = b"", hold: bool = False) -> tuple[Attributes, Attributes]:
        """Make a name; the new inode's attributes and the directory's after."""
        child, after, seq = await self._call("mknod", parent, name, mode, rdev, uid, gid,
                                             target, "1" if hold else "0")
        a, d = _attrs(child), _attrs(after)
        a.seq = d.seq = int(seq)
        return a, d

    async def link(self, ino: int, parent: int, name: bytes) -> Attributes:
        return _attrs(await self._call("link", ino, parent, name))

    async def unlink(self, parent: int, name: bytes, *,
                     directory: bool = False) -> tuple[int, Attributes]:
        """Remove a name; the inode it named and the directory's attributes after."""
        ino, after, seq = await self._call("rmdir" if directory else "unlink", parent, name)
        a = _attrs(after)
        a.seq = int(seq)
        return int(ino), a

    async def rename(self, p1: int, n1: bytes, p2: int, n2: bytes,
                     flags: int) -> tuple[int, int]:
        """Rename; return the inode moved and the one the new name named before (0: none;
        with RENAME_EXCHANGE the one moved the other way)."""
        moved, replaced = await self._call("rename", p1, n1, p2, n2, flags)
        return int(moved), int(replaced)

    async def write(self, ino: int, off: int, data: bytes, crtime: bytes = b"") -> int:
        """Write ``data`` at ``off`` (-1: at the end of the file, atomically); return the new
        size. ``crtime`` as for read()."""
        return int(await self._growing(ino, "write", ino, off, data, crtime))

    async def setattr(self, ino: int, **fields: int) -> Attributes:
        """Change attributes (mode uid gid size atime mtime). A truncate with more than
        4 x SEEK_PAGES pages to drop sets the size at once and drops the pages past it in
        parts, SEEK_PAGES per call, before it returns (no script holds Redis long)."""
        args: list[Any] = []
        for k, v in fields.items():
            args += [k, v]
        if "size" in fields:
            args += ["split", 4 * SEEK_PAGES]
        # A truncate runs to its end even if the caller is cancelled (an interrupted
        # truncate): a script call cancelled may have run all the same, leaving the size set
        # and pages marked, which must go too. The reply says what happened.
        with anyio.CancelScope(shield="size" in fields):
            a = _attrs(await self._growing(ino, "setattr", ino, *args))
            if "g" in a:
                await self._drop(ino)
                a = await self.getattr(ino)  # st_blocks without the pages dropped
        return a

    async def _growing(self, ino: int, op: str, *args: Any) -> Any:
        """Call ``op``, which may grow the file ``ino``: refused (EAGAIN) while a large
        truncate's pages are still being dropped, it drops them and goes on."""
        for _ in range(3):
            try:
                return await self._call(op, *args)
            except StoreError as e:
                if e.errno != errno.EAGAIN:
                    raise
            await self._drop(ino)
        return await self._call(op, *args)

    async def _drop(self, ino: int) -> None:
        """Drop the pages a large truncate of ``ino`` marked, in parts."""
        cursor: bytes | str = "0"
        mark: bytes | str = ""
        while True:
            cursor, mark = await self._call("drop", ino, cursor, SEEK_PAGES, mark, SCAN_PAGES)
            if not mark:
                return

    async def fallocate(self, ino: int, mode: int, off: int, length: int) -> None:
        await self._growing(ino, "fallocate", ino, mode, off, length)

    async def copy(self, src: int, off_in: int, dst: int, off_out: int, length: int) -> int:
        return int(await self._growing(dst, "copy", src, off_in, dst, off_out, length))

    async def setxattr(self, ino: int, name: bytes, value: bytes) -> None:
        await self._call("setxattr", ino, name, value)

    async def removexattr(self, ino: int, name: bytes) -> None:
        await self._call("removexattr", ino, name)

    async def open(self, ino: int, *, truncate: bool, hold: bool,
                   names: Sequence[tuple[int, bytes]] = ()) -> Attributes:
        """Open (truncating, holding the inode); the inode's attributes. ``names``: the
        (parent, name) pairs by which it may have been reached; if any no longer names it,
        nothing is done and StaleNames says which."""
        args: list[Any] = [ino, "1" if truncate else "0", "1" if hold else "0"]
        for parent, name in names:
            args += [parent, name]
        try:
            return _attrs(await self._call("open", *args, changes=truncate or hold))
        except StoreError as e:
            if e.errno != errno.ESTALE or not names:
                raise
            places = str(e.args[1]).split()[1:]
            raise StaleNames([names[int(k)] for k in places if k.isdigit()]) from None

    async def unhold(self, *inos: int) -> None:
        """Give up this mount's holds of ``inos`` (one round trip), freeing the unlinked ones
        nobody else holds."""
        if inos:
            await self._call("unhold", *inos)

    async def sweep(self) -> int:
        """Free unlinked inodes held only by mounts whose heartbeat expired, and drop the
        pages of the large truncates such mounts left half done, or any mount left without a
        part dropped for DROP_STALE seconds; the number of inodes freed."""
        freed, *unfinished = await self._call("sweep", int(DROP_STALE * 1000))
        for ino in unfinished:
            await self._drop(int(ino))
        return int(freed)

    async def heartbeat(self, ttl: float) -> None:
        await self.client.set(f"{self.prefix}:alive:{self.mount_id}", b"1",
                              px=int(ttl * 1000))

    async def unfollow(self) -> None:
        """Stop other mounts ringing this one's bell (its follower ended; the sweep forgets a
        mount whose heartbeat expired, too)."""
        await self.client.srem(self.followers_key, [self.mount_id])
        await self.client.delete([self.bell_key])

    async def log_position(self) -> tuple[bytes, int]:
        """The last record's stream ID and sequence number (``0-0``, 0 for an empty log)."""
        last = await self.client.xrevrange(self.log_key, count=1)
        if not last:
            return b"0-0", 0
        return last[0].identifier, int(last[0].field_values[b"s"])

    async def sequence(self) -> int:
        return int(await self.client.get(self.seq_key) or 0)


#: inodes whose records fsck() fetches in one pipelined round trip
FSCK_BATCH = 256


async def fsck(client: coredis.Redis[bytes], prefix: str) -> list[str]:
    """Check the store's invariants; return the problems found (none: consistent).

    Every entry names an existing inode; link counts match the entries (a directory: 2 plus
    its subdirectories); a directory's parent holds it; a page's tail has its page; no page
    lies past its file's size (a large truncate's not dropped yet are reported with the mount
    that made it); ``:count`` is the number of inodes;
    an inode without links is an orphan that some mount holds open; every number is one.
    Reads FSCK_BATCH inodes per round trip; not atomic: run it on a quiet store.
    """
    p = "{" + prefix + "}"
    problems: list[str] = []

    def number(raw: bytes | None, what: str, default: int = -1) -> int:
        if raw is not None and raw.isdigit():
            return int(raw)
        if raw is not None:
            problems.append(f"{what} is {raw.decode(errors='replace')!r}, not a number")
        return default

    inodes = sorted({number(k.rsplit(b":", 1)[1], f"key {k.decode(errors='replace')}: the inode")
                     async for k in client.scan_iter(f"{p}:i:*")} - {-1})
    known = set(inodes)
    dropping = {number(i, ":dropping's inode"): m.decode(errors="replace").partition(" ")[0]
                for i, m in (await client.hgetall(f"{p}:dropping")).items()}
    fields: dict[int, list[bytes | None]] = {}  # inode -> mode, nlink, parent
    entries: dict[int, dict[bytes, bytes]] = {}
    holders: dict[int, int] = {}
    pages: list[str] = []  # reported last, as they always were
    for start in range(0, len(inodes), FSCK_BATCH):
        async with client.pipeline(transaction=False) as pipe:
            batch = [(i, pipe.hmget(f"{p}:i:{i}", ["mode", "nlink", "parent", "size", "g"]),
                      pipe.hgetall(f"{p}:d:{i}"), pipe.hkeys(f"{p}:c:{i}"),
                      pipe.hkeys(f"{p}:t:{i}"), pipe.scard(f"{p}:h:{i}"))
                     for i in inodes[start:start + FSCK_BATCH]]
        for i, record, listing, heads_, tails_, held in batch:
            mode, nlink, parent, raw_size, mark = await record
            fields[i] = [mode, nlink, parent]
            entries[i] = await listing
            holders[i] = await held
            heads = set(await heads_)
            tails = set(await tails_) - heads
            if tails:
                pages.append(f"inode {i}: page tails without their pages {sorted(tails)}")
            size = number(raw_size, f"inode {i}: size")
            past = sum(1 for h in heads if number(h, f"inode {i}: a page") * PAGE >= size >= 0)
            if past and mark is None:
                pages.append(f"inode {i}: {past} page(s) past its size {size}")
            elif past:
                who = dropping.get(i)
                pages.append(
                    f"inode {i}: {past} page(s) past its size {size} not dropped yet "
                    + (f"(a large truncate by mount {who}; a sweep drops them once that mount "
                       f"is gone or has dropped none for {DROP_STALE:g} s)" if who else
                       "(a large truncate's, and no mount is named to drop them: a growing "
                       "write drops them)"))
    links: dict[int, int] = dict.fromkeys(inodes, 0)
    subdirs: dict[int, int] = dict.fromkeys(inodes, 0)
    modes = {i: number(fields[i][0], f"inode {i}: mode", 0) for i in inodes}
    for d in inodes:
        if entries[d] and not stat.S_ISDIR(modes[d]):
            problems.append(f"inode {d} has entries but is not a directory")
        for name, child in entries[d].items():
            c = number(child, f"entry {name!r} of {d}")
            if c < 0:
                continue
            if c not in known:
                problems.append(f"entry {name!r} of {d} names missing inode {c}")
                continue
            links[c] += 1
            if stat.S_ISDIR(modes[c]):
                subdirs[d] += 1
                if number(fields[c][2], f"directory {c}: parent", 0) != d:
                    problems.append(f"directory {c} is in {d} but names another parent")
    links[1] = links.get(1, 0) + 1  # the root has no entry naming it
    orphans = {number(i, "an orphan") for i in await client.smembers(f"{p}:orphans")}
    for i in inodes:
        nlink = number(fields[i][1], f"inode {i}: nlink")
        want = (links[i] + 1 + subdirs[i]) if stat.S_ISDIR(modes[i]) else links[i]
        if links[i] == 0 and i != 1:
            if i not in orphans or not holders[i]:
                problems.append(f"inode {i} has no name and no holder")
        elif nlink != want:
            problems.append(f"inode {i}: nlink {nlink}, expected {want}")
    problems += pages
    count = int(await client.get(f"{p}:count") or 0)
    if count != len(inodes):
        problems.append(f":count is {count} for {len(inodes)} inodes")
    return problems
