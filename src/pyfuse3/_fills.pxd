from pyfuse3._libfuse.fuse_lowlevel cimport fuse_entry_param, fuse_ino_t, fuse_session
from pyfuse3._backing cimport Backing

cdef enum:
    RING = 64                  # changes remembered; a reply that missed more is treated as stale

cdef enum:
    STALE_ATTR = 1             # the reply's inode changed while the reply was computed
    STALE_ENTRY = 2            # an entry of the reply's directory changed meanwhile

cdef struct Change:
    unsigned long long seq
    fuse_ino_t ino
    bint entry                 # an entry of directory ino changed (else inode ino itself)
    Py_hash_t name             # the entry's hash(name); 0: any entry of the directory


cdef class Fills:
    cdef readonly unsigned long long seq
    cdef Change ring[RING]
    cdef fuse_ino_t sent[RING]  # inodes of the last entry replies (a fill may still be landing)
    cdef unsigned int sent_at
    cdef fuse_session* se
    cdef readonly Backing backing      # passthrough opens (a fill of another kind)
    cdef dict listings         # open directory handle -> seq when its opendir() started

    cdef void inode_changed(self, fuse_ino_t ino) noexcept
    cdef void entry_changed(self, fuse_ino_t parent, Py_hash_t name) noexcept
    cdef int stale(self, unsigned long long since, fuse_ino_t ino, fuse_ino_t parent,
                   Py_hash_t name) noexcept
    cdef const fuse_entry_param* entry(self, unsigned long long since, fuse_ino_t parent,
                                       object name, const fuse_entry_param* e,
                                       fuse_entry_param* copy) noexcept
    cdef double attr_timeout(self, unsigned long long since, fuse_ino_t ino,
                             double timeout) noexcept
    cdef void drop_attrs(self, fuse_ino_t ino) noexcept
    cdef bint may_be_landing(self, fuse_ino_t ino) noexcept
    cdef void listing_opened(self, unsigned long long fh, unsigned long long since)
    cdef void listing_closed(self, unsigned long long fh)
    cdef unsigned long long listing_since(self, unsigned long long fh)
