from collections.abc import Generator
from typing import Any

class HandlerResultError(TypeError): ...

class Pending:
    def __await__(self) -> Generator[Any, Any, None]: ...
