# cython: language_level=3, binding=False
"""Race-free cache fills: no reply may fill a kernel cache with state older than a change the
file system already announced.

A reply that fills the kernel's caches (an entry, attributes, READDIRPLUS entries) is computed
by a handler and sent later. If the file system invalidated that inode or entry in between, the
invalidation reached the kernel before the reply and found nothing to drop (a new inode, a name
not looked up yet); the reply would then cache the old state for its whole timeout. Every
invalidation therefore bumps ``seq`` and is remembered in a ring. A request notes ``seq`` when
its handler starts; a filling reply compares once (the hot path: one integer compare) and, only
if something changed meanwhile, looks through the ring and sends the affected timeouts as 0:
the kernel then asks again on next use instead of trusting the reply.

A READDIRPLUS listing counts from the opendir() of its handle (handlers may take the listing
there), so names and attributes invalidated since then are handed out with timeout 0 too.

Every method runs with the GIL held and without releasing it, so invalidating threads and the
event-loop thread see a consistent ring.
"""
cimport cython
from libc.string cimport memcpy
from pyfuse3._libfuse.fuse_lowlevel cimport fuse_lowlevel_notify_inval_inode
from pyfuse3._backing cimport Backing


@cython.final
cdef class Fills:
    """The cache-fill guard of one session: changes announced, replies checked against them."""

    def __cinit__(self):
        self.listings = {}
        self.backing = Backing()

    cdef void inode_changed(self, fuse_ino_t ino) noexcept:
        """Remember that inode ``ino`` (attributes or data) changed."""
        self.seq += 1
        cdef Change* c = &self.ring[self.seq % RING]
        c.seq = self.seq
        c.ino = ino
        c.entry = False

    cdef void entry_changed(self, fuse_ino_t parent, Py_hash_t name) noexcept:
        """Remember that the entry with ``hash(name)`` of directory ``parent`` changed."""
        self.seq += 1
        cdef Change* c = &self.ring[self.seq % RING]
        c.seq = self.seq
        c.ino = parent
        c.entry = True
        c.name = name

    cdef int stale(self, unsigned long long since, fuse_ino_t ino, fuse_ino_t parent,
                   Py_hash_t name) noexcept:
        """STALE_ATTR and/or STALE_ENTRY for a reply about inode ``ino`` (entry ``name``, a
        hash or 0 for unknown, in directory ``parent``, 0 if none) computed from ``since``
        on. Hash collisions only make a reply look stale."""
        cdef int found = 0
        cdef unsigned long long s
        cdef Change* c
        if self.seq == since:
            return 0
        if self.seq - since > RING:  # forgotten changes: assume the worst
            return STALE_ATTR | STALE_ENTRY
        for s in range(since + 1, self.seq + 1):
            c = &self.ring[s % RING]
            if c.entry:
                if c.ino == parent and parent != 0 and (
                        name == 0 or c.name == 0 or c.name == name):
                    found |= STALE_ENTRY
            elif c.ino == ino:
                found |= STALE_ATTR
        return found

    cdef const fuse_entry_param* entry(self, unsigned long long since, fuse_ino_t parent,
                                       object name, const fuse_entry_param* e,
                                       fuse_entry_param* copy) noexcept:
        """``e`` (entry ``name`` of ``parent``; name None: unknown), or ``copy`` holding
        ``e`` with the timeouts of stale parts set to 0."""
        cdef int found
        self.sent[self.sent_at % RING] = e.ino
        self.sent_at += 1
        if self.seq == since:
            return e
        found = self.stale(since, e.ino, parent, 0 if name is None else hash(name))
        if not found:
            return e
        memcpy(copy, e, sizeof(fuse_entry_param))
        if found & STALE_ATTR:
            copy.attr_timeout = 0
        if found & STALE_ENTRY:
            copy.entry_timeout = 0
        return copy

    cdef double attr_timeout(self, unsigned long long since, fuse_ino_t ino,
                             double timeout) noexcept:
        """``timeout``, or 0 if inode ``ino`` changed since ``since``."""
        if self.seq == since or not self.stale(since, ino, 0, 0) & STALE_ATTR:
            return timeout
        return 0

    cdef void drop_attrs(self, fuse_ino_t ino) noexcept:
        """Drop the kernel's cached attributes of ``ino`` now (close-to-open). Never waits for
        a request, so it is safe on the event-loop thread while a request is being answered."""
        self.inode_changed(ino)
        if self.se != NULL:
            with nogil:
                fuse_lowlevel_notify_inval_inode(self.se, ino, -1, 0)  # ENOENT: nothing cached

    cdef bint may_be_landing(self, fuse_ino_t ino) noexcept:
        """True if one of the last entry replies named ``ino``: a client thread may not have
        installed that inode yet, so an invalidation that found nothing should be repeated."""
        cdef unsigned int i
        for i in range(RING):
            if self.sent[i] == ino:
                return True
        return False

    cdef void listing_opened(self, unsigned long long fh, unsigned long long since):
        """An opendir() that started at ``since`` answered with handle ``fh``."""
        old = self.listings.get(fh)
        if old is None or <unsigned long long>old > since:
            self.listings[fh] = since

    cdef void listing_closed(self, unsigned long long fh):
        self.listings.pop(fh, None)

    cdef unsigned long long listing_since(self, unsigned long long fh):
        """Where a READDIRPLUS on handle ``fh`` counts changes from."""
        since = self.listings.get(fh)
        return self.seq if since is None else <unsigned long long>since
