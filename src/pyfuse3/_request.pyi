from collections.abc import Generator
from typing import Any, NamedTuple

from ._types import EntryAttributes

class Operation(NamedTuple):
    op: int
    name: str
    opcodes: tuple[int, ...]
    reply: int
    default: int
    lowlevel: tuple[str, ...]
    @property
    def result(self) -> str: ...

OPERATIONS: tuple[Operation, ...]
OP_NAMES: tuple[str, ...]
RESULT_OF_REPLY: dict[int, str]

class HandlerResultError(TypeError): ...

class ReaddirToken:
    @property
    def plus(self) -> bool: ...

class Pending:
    def __await__(self) -> Generator[Any, Any, None]: ...

def readdir_reply(token: ReaddirToken, name: bytes, attr: EntryAttributes,
                  next_id: int) -> bool: ...
