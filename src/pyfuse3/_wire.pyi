STRUCTS: dict[str, int]
FIELDS: dict[str, list[tuple[str, int, int, bool, str | None]]]
CONSTANTS: dict[str, int]
