ops_table: object
CAPABILITIES: dict[str, int]
LIMITS: tuple[str, ...]
def filled_fields() -> frozenset[str]: ...
