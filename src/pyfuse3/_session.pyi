from collections.abc import Iterable
from typing import Any

DRAIN_EMPTY: int
DRAIN_PENDING: int
DRAIN_BUSY: int
DRAIN_EXIT: int

class Session:
    fd: int
    ops: Any
    mountpoint: str
    pending: Any
    capable: int
    want: int
    initialized: bool
    mounted: bool
    entry_worker: Any
    retrievals: dict[int, Any]
    next_cookie: int
    def __init__(self, ops: Any, mountpoint: str, options: Iterable[str],
                 ops_table: object) -> None: ...
    def mount(self) -> None: ...
    def note_init(self, capable: int, want: int) -> None: ...
    def drain(self, limit: int) -> int: ...
    def take_pending(self) -> Any: ...
    def exit(self) -> None: ...
    @property
    def exited(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    def close(self, unmount: bool = True) -> None: ...
