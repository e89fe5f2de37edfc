from collections.abc import Callable, Generator
from typing import Any

class HandlerResultError(TypeError): ...

class Interrupts:
    caller_dying: Callable[[int], bool]
    def __init__(self, handlers: tuple[Any, ...], caller_dying: Callable[[int], bool]) -> None: ...
    def watched_by(self, on_held: Callable[[Pending | None], None] | None) -> None: ...
    def of(self, op: int) -> int: ...

class Pending:
    interrupted: bool
    held: bool
    replied: bool
    caller: int
    on_interrupt: Callable[[], None] | None
    cancel_expected: bool
    def __await__(self) -> Generator[Any, Any, None]: ...
    def interrupt(self) -> None: ...
