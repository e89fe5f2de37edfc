from pyfuse3._libfuse.fuse_lowlevel cimport fuse_pollhandle
from pyfuse3._session cimport Session


cdef class PollHandle:
    cdef fuse_pollhandle* ph
    cdef Session session


cdef PollHandle new_poll_handle(Session session, fuse_pollhandle* ph)
