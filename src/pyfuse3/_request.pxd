from pyfuse3._libfuse.fuse_lowlevel cimport fuse_req_t

# Operations: the index of each row of OPERATIONS in _request.pyx (checked at import).
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
    OP_COUNT


cdef class ReaddirToken:
    cdef fuse_req_t req
    cdef char* buf
    cdef size_t size
    cdef size_t used
    cdef bint full
    cdef bint finished
    cdef readonly bint plus              # READDIRPLUS: the kernel caches the attributes


cdef class Pending:
    cdef fuse_req_t req
    cdef int op
    cdef size_t size
    cdef object extra
    cdef object coro
    cdef object first
    cdef bint replied
    cdef bint started
    cdef readonly bint interrupted
    cdef public bint cancel_expected     # pyfuse3 itself is cancelling this handler
    cdef public object on_interrupt
    cdef set live                        # the session's set of unanswered Pendings

    cdef bint _settle(self, fuse_req_t* req)
    cdef _done(self, object result)
    cdef _fail(self, BaseException exc)
    cpdef abandon(self)


cdef object start(fuse_req_t req, int op, size_t size, object extra, object coro)
cdef object reply_failure(fuse_req_t req, int op, object exc, object extra,
                          bint cancel_expected=*)
cdef ReaddirToken new_token(fuse_req_t req, size_t size, bint plus)
