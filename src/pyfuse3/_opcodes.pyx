# cython: language_level=3, binding=True
"""The operation table: each FUSE operation's handler name, kernel opcodes, reply kind, default.

Data only: cimported (the Op and Reply enums) by the reply engine (``_request``) and the
trampolines (``_callbacks``), imported (the table) by the Python modules that need names.
"""
from libc.errno cimport ENOSYS
from pyfuse3._libfuse.fuse_kernel cimport (
    FUSE_ACCESS, FUSE_BATCH_FORGET, FUSE_BMAP, FUSE_COPY_FILE_RANGE, FUSE_CREATE,
    FUSE_FALLOCATE, FUSE_FLUSH, FUSE_FORGET, FUSE_FSYNC, FUSE_FSYNCDIR, FUSE_GETATTR,
    FUSE_GETLK, FUSE_GETXATTR, FUSE_IOCTL, FUSE_LINK, FUSE_LISTXATTR, FUSE_LOOKUP, FUSE_LSEEK,
    FUSE_MKDIR, FUSE_MKNOD, FUSE_OPEN, FUSE_OPENDIR, FUSE_POLL, FUSE_READ, FUSE_READDIR,
    FUSE_READDIRPLUS, FUSE_READLINK, FUSE_RELEASE, FUSE_RELEASEDIR, FUSE_REMOVEXATTR,
    FUSE_RENAME, FUSE_RENAME2, FUSE_RMDIR, FUSE_SETATTR, FUSE_SETLK, FUSE_SETLKW, FUSE_SETXATTR,
    FUSE_STATFS, FUSE_STATX, FUSE_SYMLINK, FUSE_TMPFILE, FUSE_UNLINK, FUSE_WRITE,
)
from cpython.pycapsule cimport PyCapsule_GetPointer
from pyfuse3._libfuse.fuse_lowlevel cimport (
    PYFUSE3_HAVE_STATX, PYFUSE3_HAVE_TMPFILE, fuse_lowlevel_ops, pyfuse3_statx_filled,
    pyfuse3_tmpfile_filled,
)

from collections import namedtuple
from stat import S_IFDIR, S_IFLNK, S_IFREG

#: Operation.makes for an operation whose new entry may be of any type.
ANY_TYPE = 1

#: reply kind -> the result a handler must return (None for R_NONE: anything but a coroutine)
RESULT_OF_REPLY = {
    R_ENTRY: "EntryAttributes", R_ATTR: "EntryAttributes", R_STATX: "EntryAttributes",
    R_READLINK: "bytes",
    R_OPEN: "FileInfo", R_OPENDIR: "int or FileInfo",
    R_CREATE: "a (FileInfo, EntryAttributes) tuple",
    R_READ: "a bytes-like object or FileRange", R_WRITE: "int", R_STATFS: "StatvfsData",
    R_XATTR: "bytes", R_LISTXATTR: "a sequence of bytes", R_ACCESS: "bool",
    R_READDIR: "None", R_NONE: "None", R_NOREPLY: "None", R_POLL: "int (the ready events)",
    R_LSEEK: "int (the new offset)", R_LOCK: "FileLock", R_BMAP: "int (the device block)",
    R_IOCTL: "bytes (output, result 0), int (result, no output) or an (int, bytes) tuple",
}


class Operation(namedtuple("Operation",
                           "op name opcodes reply default lowlevel makes interrupt",
                           defaults=(0, INTERRUPT_FATAL))):
    """One row of the operation table.

    op: index in every derived table (the Op enum of _request.pxd); name: the Operations
    method that handles it; opcodes: what the kernel sends (_libfuse/kernel.h); reply: how a
    result is answered (Reply); default: the errno Operations' default answers (0: it does
    nothing); lowlevel: the fuse_lowlevel_ops fields its trampoline fills; makes: for an
    operation whose reply is a new entry, the file type it must have (S_IFMT bits), or
    ANY_TYPE (the request's, which mknod's trampoline hands _request, or the linked
    inode's, which pyfuse3 does not know); 0 for the others. interrupt: the signals that
    cancel its handler by default (INTERRUPT_FATAL but for lock waits).
    """

    __slots__ = ()

    @property
    def result(self):
        """The result a handler must return."""
        return RESULT_OF_REPLY[self.reply]


#: The operations: the single source of the names, reply kinds and defaults used by _request
#: (answers), _session (handler binding), Operations and the tests against the libfuse table.
#: Adding one: see "House rules" in docs/design.md.
OPERATIONS = tuple(Operation(*row) for row in (
    (OP_LOOKUP, "lookup", (FUSE_LOOKUP,), R_ENTRY, ENOSYS, ("lookup",)),
    (OP_FORGET, "forget", (FUSE_FORGET, FUSE_BATCH_FORGET), R_NOREPLY, 0,
     ("forget", "forget_multi")),
    (OP_GETATTR, "getattr", (FUSE_GETATTR,), R_ATTR, ENOSYS, ("getattr",)),
    (OP_SETATTR, "setattr", (FUSE_SETATTR,), R_ATTR, ENOSYS, ("setattr",)),
    (OP_READLINK, "readlink", (FUSE_READLINK,), R_READLINK, ENOSYS, ("readlink",)),
    (OP_MKNOD, "mknod", (FUSE_MKNOD,), R_ENTRY, ENOSYS, ("mknod",), ANY_TYPE),
    (OP_MKDIR, "mkdir", (FUSE_MKDIR,), R_ENTRY, ENOSYS, ("mkdir",), S_IFDIR),
    (OP_UNLINK, "unlink", (FUSE_UNLINK,), R_NONE, ENOSYS, ("unlink",)),
    (OP_RMDIR, "rmdir", (FUSE_RMDIR,), R_NONE, ENOSYS, ("rmdir",)),
    (OP_SYMLINK, "symlink", (FUSE_SYMLINK,), R_ENTRY, ENOSYS, ("symlink",), S_IFLNK),
    (OP_RENAME, "rename", (FUSE_RENAME, FUSE_RENAME2), R_NONE, ENOSYS, ("rename",)),
    (OP_LINK, "link", (FUSE_LINK,), R_ENTRY, ENOSYS, ("link",), ANY_TYPE),
    (OP_OPEN, "open", (FUSE_OPEN,), R_OPEN, ENOSYS, ("open",)),
    (OP_READ, "read", (FUSE_READ,), R_READ, ENOSYS, ("read",)),
    (OP_WRITE, "write", (FUSE_WRITE,), R_WRITE, ENOSYS, ("write",)),
    (OP_FLUSH, "flush", (FUSE_FLUSH,), R_NONE, ENOSYS, ("flush",)),
    (OP_RELEASE, "release", (FUSE_RELEASE,), R_NONE, ENOSYS, ("release",)),
    (OP_FSYNC, "fsync", (FUSE_FSYNC,), R_NONE, ENOSYS, ("fsync",)),
    (OP_OPENDIR, "opendir", (FUSE_OPENDIR,), R_OPENDIR, ENOSYS, ("opendir",)),
    (OP_READDIR, "readdir", (FUSE_READDIR, FUSE_READDIRPLUS), R_READDIR, ENOSYS,
     ("readdir", "readdirplus")),
    (OP_RELEASEDIR, "releasedir", (FUSE_RELEASEDIR,), R_NONE, ENOSYS, ("releasedir",)),
    (OP_FSYNCDIR, "fsyncdir", (FUSE_FSYNCDIR,), R_NONE, ENOSYS, ("fsyncdir",)),
    (OP_STATFS, "statfs", (FUSE_STATFS,), R_STATFS, ENOSYS, ("statfs",)),
    (OP_SETXATTR, "setxattr", (FUSE_SETXATTR,), R_NONE, ENOSYS, ("setxattr",)),
    (OP_GETXATTR, "getxattr", (FUSE_GETXATTR,), R_XATTR, ENOSYS, ("getxattr",)),
    (OP_LISTXATTR, "listxattr", (FUSE_LISTXATTR,), R_LISTXATTR, ENOSYS, ("listxattr",)),
    (OP_REMOVEXATTR, "removexattr", (FUSE_REMOVEXATTR,), R_NONE, ENOSYS, ("removexattr",)),
    (OP_ACCESS, "access", (FUSE_ACCESS,), R_ACCESS, ENOSYS, ("access",)),
    (OP_CREATE, "create", (FUSE_CREATE,), R_CREATE, ENOSYS, ("create",), S_IFREG),
    (OP_POLL, "poll", (FUSE_POLL,), R_POLL, ENOSYS, ("poll",)),
    (OP_FLOCK, "flock", (FUSE_SETLK, FUSE_SETLKW), R_NONE, ENOSYS, ("flock",), 0,
     INTERRUPT_ANY),
    (OP_FALLOCATE, "fallocate", (FUSE_FALLOCATE,), R_NONE, ENOSYS, ("fallocate",)),
    (OP_LSEEK, "lseek", (FUSE_LSEEK,), R_LSEEK, ENOSYS, ("lseek",)),
    (OP_COPY_FILE_RANGE, "copy_file_range", (FUSE_COPY_FILE_RANGE,), R_WRITE, ENOSYS,
     ("copy_file_range",)),
    # flock() and setlk() share the kernel's SETLK/SETLKW (FUSE_LK_FLOCK tells them apart)
    (OP_GETLK, "getlk", (FUSE_GETLK,), R_LOCK, ENOSYS, ("getlk",)),
    (OP_SETLK, "setlk", (FUSE_SETLK, FUSE_SETLKW), R_NONE, ENOSYS, ("setlk",), 0,
     INTERRUPT_ANY),
    (OP_BMAP, "bmap", (FUSE_BMAP,), R_BMAP, ENOSYS, ("bmap",)),
    (OP_IOCTL, "ioctl", (FUSE_IOCTL,), R_IOCTL, ENOSYS, ("ioctl",)),
    # libfuse 3.18 (O_TMPFILE; Linux 6.1): not in libfuse's table when built against an older one
    (OP_TMPFILE, "tmpfile", (FUSE_TMPFILE,), R_CREATE, ENOSYS,
     ("tmpfile",) if PYFUSE3_HAVE_TMPFILE else (), S_IFREG),
    # libfuse 3.18 (birth time; Linux 6.6): likewise
    (OP_STATX, "statx", (FUSE_STATX,), R_STATX, ENOSYS, ("statx",) if PYFUSE3_HAVE_STATX else ()),
))

#: The handler names, indexed by Op.
OP_NAMES = tuple([o.name for o in OPERATIONS])

if len(OPERATIONS) != OP_COUNT:
    raise ImportError(f"pyfuse3: {len(OPERATIONS)} operations in the table, "
                      f"{OP_COUNT} in the Op enum")
for _i, _o in enumerate(OPERATIONS):
    if _o.op != _i:
        raise ImportError(f"pyfuse3: operation table row {_i} ({_o.name}) is not in Op order")
del _i, _o


def filled_fields(lowlevel_ops):
    """The names of the fields filled in ``lowlevel_ops`` (``_callbacks.lowlevel_ops``, a
    capsule of libfuse's fuse_lowlevel_ops), for the test that checks them against the table."""
    cdef const fuse_lowlevel_ops* t = <const fuse_lowlevel_ops*>PyCapsule_GetPointer(
        lowlevel_ops, "pyfuse3.lowlevel_ops")
    fields = {
        "init": t.init != NULL, "destroy": t.destroy != NULL, "lookup": t.lookup != NULL,
        "forget": t.forget != NULL, "getattr": t.getattr != NULL, "setattr": t.setattr != NULL,
        "readlink": t.readlink != NULL, "mknod": t.mknod != NULL, "mkdir": t.mkdir != NULL,
        "unlink": t.unlink != NULL, "rmdir": t.rmdir != NULL, "symlink": t.symlink != NULL,
        "rename": t.rename != NULL, "link": t.link != NULL, "open": t.open != NULL,
        "read": t.read != NULL, "write": t.write != NULL, "flush": t.flush != NULL,
        "release": t.release != NULL, "fsync": t.fsync != NULL, "opendir": t.opendir != NULL,
        "readdir": t.readdir != NULL, "releasedir": t.releasedir != NULL,
        "fsyncdir": t.fsyncdir != NULL, "statfs": t.statfs != NULL,
        "setxattr": t.setxattr != NULL, "getxattr": t.getxattr != NULL,
        "listxattr": t.listxattr != NULL, "removexattr": t.removexattr != NULL,
        "access": t.access != NULL, "create": t.create != NULL, "poll": t.poll != NULL,
        "flock": t.flock != NULL, "fallocate": t.fallocate != NULL, "lseek": t.lseek != NULL,
        "copy_file_range": t.copy_file_range != NULL, "getlk": t.getlk != NULL,
        "setlk": t.setlk != NULL, "bmap": t.bmap != NULL, "ioctl": t.ioctl != NULL,
        "retrieve_reply": t.retrieve_reply != NULL, "forget_multi": t.forget_multi != NULL,
        "readdirplus": t.readdirplus != NULL, "tmpfile": pyfuse3_tmpfile_filled(t),
        "statx": pyfuse3_statx_filled(t),
    }
    return frozenset(name for name, filled in fields.items() if filled)
