from collections.abc import Generator
from typing import Any

from ._types import EntryAttributes

class HandlerResultError(TypeError): ...

class ReaddirToken:
    @property
    def plus(self) -> bool: ...

class Pending:
    def __await__(self) -> Generator[Any, Any, None]: ...

def readdir_reply(token: ReaddirToken, name: bytes, attr: EntryAttributes,
                  next_id: int) -> bool: ...
