CAPABILITIES: dict[str, int]
