from pyfuse3._libfuse.fuse_lowlevel cimport fuse_ino_t, fuse_req_t
from posix.types cimport off_t
from pyfuse3._fills cimport Fills


cdef class ReaddirToken:
    cdef fuse_req_t req
    cdef char* buf
    cdef size_t size
    cdef off_t start                     # the request's offset (the handler's start_id)
    cdef size_t used
    cdef bint full
    cdef bint finished
    cdef bint hid                        # an entry with inode 0 was named in the log
    cdef readonly bint plus              # READDIRPLUS: the kernel caches the attributes
    cdef Fills fills                     # (READDIRPLUS only) changes since the listing began
    cdef unsigned long long since
    cdef fuse_ino_t directory


cdef ReaddirToken new_token(fuse_req_t req, size_t size, off_t start, bint plus, Fills fills,
                            unsigned long long fh, fuse_ino_t directory)
cdef void finish_token(object extra) noexcept
