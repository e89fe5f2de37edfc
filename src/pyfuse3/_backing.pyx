# cython: language_level=3, binding=False
"""Kernel passthrough: backing files registered for the opens that name one.

An ``open()``/``create()`` handler returns ``FileInfo(fh, backing_fd=fd)``; the kernel then
reads and writes that file itself (no READ or WRITE request). The kernel takes one backing
file per inode (each open gets its own file opened from it, with the open's flags), so the
first such open of an inode registers ``fd`` and later ones share its id until the last of
them is released. Where passthrough is not in use (not negotiated, no privilege), the open
is answered as a plain one and the file is served by ``read()``/``write()``; the reason is
logged once per mount.
"""
from libc.errno cimport ELOOP, EPERM, errno
from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_ino_t, fuse_req_t, pyfuse3_passthrough_close, pyfuse3_passthrough_open,
)

import logging
import os

log = logging.getLogger("pyfuse3")

#: What a registration's errno means (the kernel's fuse_backing_open).
_WHY = {
    EPERM: " (it needs CAP_SYS_ADMIN)",
    ELOOP: " (the backing file lies on a stacking file system, such as overlayfs or a FUSE "
           "passthrough mount: ConnectionInfo.max_backing_stack_depth = 1 allows that)",
}


cdef class Backing:
    """The backing files of one session's passthrough opens."""

    def __cinit__(self):
        self.by_inode = {}
        self.opens = set()
        self.enabled = False
        self.unavailable = "passthrough was not negotiated"
        self.told = False

    cdef int open(self, fuse_req_t req, fuse_ino_t ino, unsigned long long fh,
                  int fd) except -1:
        """The backing id for this open of ``ino`` (``fd`` registered if it is the first), or
        0: answer it as a plain open."""
        cdef int backing_id
        cdef int err
        if not self.enabled:
            self._tell(self.unavailable)
            return 0
        entry = self.by_inode.get(ino)
        if entry is None:
            backing_id = pyfuse3_passthrough_open(req, fd)
            err = errno
            if backing_id <= 0:
                self._tell(f"registering the backing file failed: {os.strerror(err)}"
                           + _WHY.get(err, ""))
                return 0
            self.by_inode[ino] = [backing_id, 1]
        else:
            backing_id = entry[0]
            entry[1] += 1
        self.opens.add((ino, fh))
        return backing_id

    cdef void release(self, fuse_req_t req, fuse_ino_t ino, unsigned long long fh) noexcept:
        """An open ends: the backing file is let go after the last open of its inode."""
        try:
            key = (ino, fh)
            if key not in self.opens:
                return
            self.opens.discard(key)
            entry = self.by_inode[ino]
            entry[1] -= 1
            if entry[1] == 0:
                del self.by_inode[ino]
                if pyfuse3_passthrough_close(req, entry[0]) < 0:
                    log.warning("closing the backing file of inode %d failed", ino)
        except BaseException:
            log.exception("releasing a passthrough open failed")

    def _tell(self, why):
        if not self.told:
            self.told = True
            log.warning("open() returned a backing_fd, but passthrough is not in use on this "
                        "mount (%s): such files are served by read() and write()", why)

    @property
    def registered(self):
        """inode -> number of passthrough opens (for tests)."""
        return {ino: entry[1] for ino, entry in self.by_inode.items()}
