from posix.types cimport off_t
from pyfuse3._libfuse.fuse_lowlevel cimport fuse_bufvec, fuse_conn_info, fuse_ino_t, fuse_req_t

cdef void cb_init(void* userdata, fuse_conn_info* conn) noexcept
cdef void cb_destroy(void* userdata) noexcept with gil
cdef void cb_retrieve_reply(fuse_req_t req, void* cookie, fuse_ino_t ino, off_t offset,
                            fuse_bufvec* bufv) noexcept
