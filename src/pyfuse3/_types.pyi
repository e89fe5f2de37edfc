from dataclasses import dataclass, field
from typing import Any

_NANOS_PER_SEC: int

class EntryAttributes:
    st_ino: int
    generation: int
    entry_timeout: float
    attr_timeout: float
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_rdev: int
    st_size: int
    st_blocks: int
    st_blksize: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_birthtime_ns: int
    def __init__(self) -> None: ...
    def __getstate__(self) -> dict[str, Any]: ...
    def __setstate__(self, state: dict[str, Any]) -> None: ...

class FileInfo:
    fh: int
    direct_io: bool
    keep_cache: bool
    nonseekable: bool
    noflush: bool
    cache_readdir: bool
    changed: bool
    backing_fd: int
    def __init__(self, fh: int = 0, direct_io: bool = False, keep_cache: bool = True,
                 nonseekable: bool = False, *, noflush: bool = False,
                 cache_readdir: bool = False, changed: bool = False,
                 backing_fd: int = -1) -> None: ...

class FileRange:
    @property
    def fd(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def size(self) -> int: ...
    def __init__(self, fd: int, offset: int, size: int) -> None: ...

class StatvfsData:
    f_bsize: int
    f_frsize: int
    f_blocks: int
    f_bfree: int
    f_bavail: int
    f_files: int
    f_ffree: int
    f_favail: int
    f_namemax: int
    def __init__(self) -> None: ...
    def __getstate__(self) -> dict[str, int]: ...
    def __setstate__(self, state: dict[str, int]) -> None: ...

class RequestContext:
    @property
    def uid(self) -> int: ...
    @property
    def gid(self) -> int: ...
    @property
    def pid(self) -> int: ...
    @property
    def umask(self) -> int: ...

class SetattrFields:
    @property
    def update_atime(self) -> bool: ...
    @property
    def update_mtime(self) -> bool: ...
    @property
    def update_ctime(self) -> bool: ...
    @property
    def update_mode(self) -> bool: ...
    @property
    def update_uid(self) -> bool: ...
    @property
    def update_gid(self) -> bool: ...
    @property
    def update_size(self) -> bool: ...

class FUSEError(Exception):
    def __init__(self, errno: int) -> None: ...
    @property
    def errno(self) -> int: ...
    @property
    def errno_(self) -> int: ...

@dataclass(frozen=True)
class FileLock:
    type: int
    start: int
    length: int
    pid: int

@dataclass
class ConnectionInfo:
    proto_major: int
    proto_minor: int
    capable: frozenset[str]
    want: set[str] = field(default_factory=set)
    max_write: int = 0
    max_read: int = 0
    max_readahead: int = 0
    max_background: int = 0
    congestion_threshold: int = 0
    time_gran: int = 0
    request_timeout: int = 0
    max_backing_stack_depth: int = 0
