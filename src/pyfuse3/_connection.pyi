CAPABILITIES: dict[str, int]
LIBFUSE_VERSION: str
UNDELIVERED: dict[str, str]
