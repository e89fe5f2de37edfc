# Declarations of <poll.h> (Cython ships no posix/poll.pxd). Declarations only.

cdef extern from "<poll.h>" nogil:
    ctypedef unsigned long nfds_t
    struct pollfd:
        int fd
        short events
        short revents
    enum:
        POLLIN
        POLLOUT
    int poll(pollfd* fds, nfds_t nfds, int timeout)
