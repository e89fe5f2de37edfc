from enum import IntEnum
from typing import NamedTuple

class Operation(NamedTuple):
    op: int
    name: str
    opcodes: tuple[int, ...]
    reply: int
    default: int
    lowlevel: tuple[str, ...]
    makes: int
    @property
    def result(self) -> str: ...

Op: type[IntEnum]  # cpdef enum: OP_LOOKUP ... OP_COUNT
Reply: type[IntEnum]  # cpdef enum: R_NONE ...

OPERATIONS: tuple[Operation, ...]
OP_NAMES: tuple[str, ...]
RESULT_OF_REPLY: dict[int, str]
ANY_TYPE: int
def filled_fields(lowlevel_ops: object) -> frozenset[str]: ...
