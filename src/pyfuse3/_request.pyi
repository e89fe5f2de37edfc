from collections.abc import Generator
from typing import Any

from ._types import EntryAttributes

OP_NAMES: tuple[str, ...]

class HandlerResultError(TypeError): ...

class ReaddirToken: ...

class Pending:
    def __await__(self) -> Generator[Any, Any, None]: ...

def readdir_reply(token: ReaddirToken, name: bytes, attr: EntryAttributes,
                  next_id: int) -> bool: ...
