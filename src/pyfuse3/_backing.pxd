from pyfuse3._libfuse.fuse_lowlevel cimport fuse_ino_t, fuse_req_t


cdef class Backing:
    cdef dict by_inode                   # inode -> [backing id, passthrough opens]
    cdef set opens                       # (inode, fh) of the opens served by passthrough
    cdef public bint enabled             # FUSE_CAP_PASSTHROUGH was negotiated at INIT
    cdef public str unavailable          # why not, for the one log line
    cdef bint told                       # that line was logged

    cdef int open(self, fuse_req_t req, fuse_ino_t ino, unsigned long long fh,
                  int fd) except -1
    cdef void release(self, fuse_req_t req, fuse_ino_t ino, unsigned long long fh) noexcept
