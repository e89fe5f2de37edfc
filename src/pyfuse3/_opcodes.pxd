# Operations: the index of each row of OPERATIONS in _opcodes.pyx (checked at import).
cpdef enum Op:
    OP_LOOKUP
    OP_FORGET
    OP_GETATTR
    OP_SETATTR
    OP_READLINK
    OP_MKNOD
    OP_MKDIR
    OP_UNLINK
    OP_RMDIR
    OP_SYMLINK
    OP_RENAME
    OP_LINK
    OP_OPEN
    OP_READ
    OP_WRITE
    OP_FLUSH
    OP_RELEASE
    OP_FSYNC
    OP_OPENDIR
    OP_READDIR
    OP_RELEASEDIR
    OP_FSYNCDIR
    OP_STATFS
    OP_SETXATTR
    OP_GETXATTR
    OP_LISTXATTR
    OP_REMOVEXATTR
    OP_ACCESS
    OP_CREATE
    OP_POLL
    OP_FLOCK
    OP_FALLOCATE
    OP_LSEEK
    OP_COPY_FILE_RANGE
    OP_GETLK
    OP_SETLK
    OP_BMAP
    OP_IOCTL
    OP_TMPFILE
    OP_STATX
    OP_COUNT


# How an operation is answered.
cpdef enum Reply:
    R_NONE, R_NOREPLY, R_ENTRY, R_ATTR, R_READLINK, R_OPEN, R_OPENDIR, R_CREATE, R_READ,
    R_WRITE, R_STATFS, R_XATTR, R_LISTXATTR, R_ACCESS, R_READDIR, R_POLL, R_LSEEK, R_LOCK,
    R_BMAP, R_IOCTL, R_STATX


# Which of the caller's signals cancel a handler that waits (Operation.interrupt; the kernel
# sends INTERRUPT for any of them); also what the interruptible/uninterruptible marks choose.
cpdef enum Interrupt:
    INTERRUPT_NEVER  # none: the handler runs to its end
    INTERRUPT_FATAL  # one the caller dies of (SIGKILL, a SIGTERM it does not handle, ...)
    INTERRUPT_ANY    # any, also one the caller handles (POSIX lock waits end with EINTR)
