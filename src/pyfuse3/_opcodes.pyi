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
    interrupt: int
    @property
    def result(self) -> str: ...

Op: type[IntEnum]  # cpdef enum: OP_LOOKUP ... OP_COUNT
Reply: type[IntEnum]  # cpdef enum: R_NONE ...
class Interrupt(IntEnum):  # cpdef enum
    INTERRUPT_NEVER = 0
    INTERRUPT_FATAL = 1
    INTERRUPT_ANY = 2

OPERATIONS: tuple[Operation, ...]
OP_NAMES: tuple[str, ...]
RESULT_OF_REPLY: dict[int, str]
ANY_TYPE: int
def filled_fields(lowlevel_ops: object) -> frozenset[str]: ...
