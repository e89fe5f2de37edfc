from ._types import EntryAttributes

class ReaddirToken:
    @property
    def plus(self) -> bool: ...

def readdir_reply(token: ReaddirToken, name: bytes, attr: EntryAttributes,
                  next_id: int) -> bool: ...
