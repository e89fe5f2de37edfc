# cython: language_level=3, binding=False, boundscheck=False, wraparound=False
"""libfuse's fuse_lowlevel_ops struct, filled: one trampoline per operation.

Each trampoline turns C arguments into Python ones, calls the handler and hands its coroutine to
``_request.start``. They run on the event-loop thread inside ``fuse_session_process_buf`` with
the GIL held, and no exception ever escapes into C.
"""
from cpython.pycapsule cimport PyCapsule_New
from libc.stdint cimport uint64_t
from libc.errno cimport ENOSYS
from libc.string cimport memset
from posix.stat cimport S_IFDIR, S_IFMT, struct_stat
from posix.fcntl cimport flock as c_flock
from posix.types cimport dev_t, mode_t, off_t
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_CAP_POSIX_LOCKS, FUSE_IOCTL_UNRESTRICTED, FUSE_ROOT_ID, fuse_file_info, fuse_forget_data,
    fuse_ino_t, fuse_lowlevel_ops, fuse_pollhandle, fuse_pollhandle_destroy, fuse_reply_err,
    fuse_reply_none, fuse_req_t, fuse_req_userdata, pyfuse3_set_statx,
    pyfuse3_set_tmpfile,
)
from pyfuse3._connection cimport cb_destroy, cb_init, cb_retrieve_reply
from pyfuse3._opcodes cimport (
    OP_ACCESS, OP_BMAP, OP_COPY_FILE_RANGE, OP_CREATE, OP_FALLOCATE, OP_FLOCK, OP_FLUSH,
    OP_FORGET, OP_FSYNC, OP_FSYNCDIR, OP_GETATTR, OP_GETLK, OP_GETXATTR, OP_IOCTL, OP_LINK,
    OP_LISTXATTR, OP_LOOKUP, OP_LSEEK, OP_MKDIR, OP_MKNOD, OP_OPEN, OP_OPENDIR, OP_POLL, OP_READ,
    OP_READDIR, OP_READLINK, OP_RELEASE, OP_RELEASEDIR, OP_REMOVEXATTR, OP_RENAME, OP_RMDIR,
    OP_SETATTR, OP_SETLK, OP_SETXATTR, OP_STATFS, OP_STATX, OP_SYMLINK, OP_TMPFILE, OP_UNLINK,
    OP_WRITE,
)
from pyfuse3._readdir cimport new_token
from pyfuse3._request cimport reply_failure, start
from pyfuse3._notify cimport new_poll_handle
from pyfuse3._session cimport Session
from pyfuse3._types cimport attr_from_stat, context_of, lock_of, setattr_fields

import logging

from pyfuse3._pyfuse3 import flush_with_unlock, release_with_unlock
from pyfuse3._xattr import setxattr_with_flags

log = logging.getLogger("pyfuse3")

cdef inline Session _s(fuse_req_t req):
    return <Session>fuse_req_userdata(req)


cdef inline void _run(Session s, fuse_req_t req, int op, size_t size, extra, coro,
                      fuse_ino_t node) noexcept:  # node: see _request.start
    s.took(start(s.fills, req, op, size, extra, coro, node, s.interrupts))


cdef inline void _fail(Session s, fuse_req_t req, int op, exc, extra=None) noexcept:
    s.took(reply_failure(req, op, exc, extra))


cdef void _cb_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_LOOKUP)(parent, <bytes>name, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_LOOKUP, e)
    else:
        _run(s, req, OP_LOOKUP, _dot(name), None, coro, parent)  # size: see start()


cdef inline size_t _dot(const char* name) noexcept:
    return name[0] == c'.' and (name[1] == 0 or (name[1] == c'.' and name[2] == 0))


cdef void _forget(Session s, fuse_req_t req, list forgets) noexcept:
    # The kernel expects no answer; answering first lets it go on while Python works.
    fuse_reply_none(req)
    try:
        coro = s.handler(OP_FORGET)(forgets)
    except BaseException as e:
        _fail(s, req, OP_FORGET, e)
    else:
        _run(s, req, OP_FORGET, 0, None, coro, 0)


cdef void _cb_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) noexcept:
    _forget(_s(req), req, [(ino, nlookup)])


cdef void _cb_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) noexcept:
    cdef Session s = _s(req)
    try:
        items = [(forgets[i].ino, forgets[i].nlookup) for i in range(count)]
    except BaseException as e:
        fuse_reply_none(req)
        _fail(s, req, OP_FORGET, e)
    else:
        _forget(s, req, items)


cdef void _cb_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_GETATTR)(ino, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_GETATTR, e)
    else:
        _run(s, req, OP_GETATTR, 0, None, coro, ino)


cdef void _cb_statx(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
                    fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_STATX)(ino, <unsigned>mask, flags,
                                   None if fi == NULL else fi.fh, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_STATX, e)
    else:
        _run(s, req, OP_STATX, 0, None, coro, ino)


cdef void _cb_setattr(fuse_req_t req, fuse_ino_t ino, struct_stat* stat, int to_set,
                      fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_SETATTR)(ino, attr_from_stat(ino, stat, to_set),
                                     setattr_fields(to_set), fi.fh if fi != NULL else None,
                                     context_of(req))
    except BaseException as e:
        _fail(s, req, OP_SETATTR, e)
    else:
        _run(s, req, OP_SETATTR, 0, None, coro, ino)


cdef void _cb_readlink(fuse_req_t req, fuse_ino_t ino) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_READLINK)(ino, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_READLINK, e)
    else:
        _run(s, req, OP_READLINK, 0, None, coro, 0)


cdef void _cb_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                    dev_t rdev) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_MKNOD)(parent, <bytes>name, mode, rdev, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_MKNOD, e)
    else:
        _run(s, req, OP_MKNOD, mode & S_IFMT, None, coro, parent)  # size: the type asked


cdef void _cb_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_MKDIR)(parent, <bytes>name, mode | S_IFDIR, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_MKDIR, e)
    else:
        _run(s, req, OP_MKDIR, 0, None, coro, parent)


cdef void _cb_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_UNLINK)(parent, <bytes>name, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_UNLINK, e)
    else:
        _run(s, req, OP_UNLINK, 0, None, coro, 0)


cdef void _cb_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_RMDIR)(parent, <bytes>name, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_RMDIR, e)
    else:
        _run(s, req, OP_RMDIR, 0, None, coro, 0)


cdef void _cb_symlink(fuse_req_t req, const char* target, fuse_ino_t parent,
                      const char* name) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_SYMLINK)(parent, <bytes>name, <bytes>target, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_SYMLINK, e)
    else:
        _run(s, req, OP_SYMLINK, 0, None, coro, parent)


cdef void _cb_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                     const char* newname, unsigned int flags) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_RENAME)(parent, <bytes>name, newparent, <bytes>newname, flags,
                                    context_of(req))
    except BaseException as e:
        _fail(s, req, OP_RENAME, e)
    else:
        _run(s, req, OP_RENAME, 0, None, coro, 0)


cdef void _cb_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                   const char* newname) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_LINK)(ino, newparent, <bytes>newname, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_LINK, e)
    else:
        _run(s, req, OP_LINK, 0, None, coro, newparent)


cdef void _cb_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_OPEN)(ino, fi.flags, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_OPEN, e)
    else:
        _run(s, req, OP_OPEN, 0, None, coro, ino)


cdef void _cb_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                   fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_READ)(fi.fh, off, size)
    except BaseException as e:
        _fail(s, req, OP_READ, e)
    else:
        _run(s, req, OP_READ, size, None, coro, 0)


cdef void _cb_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                    fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_WRITE)(fi.fh, off, buf[:size])
    except BaseException as e:
        _fail(s, req, OP_WRITE, e)
    else:
        _run(s, req, OP_WRITE, size, None, coro, 0)


cdef void _fh_op(fuse_req_t req, int op, fuse_file_info* fi) noexcept:
    # flush, release, releasedir: the handler takes only the file handle.
    cdef Session s = _s(req)
    try:
        coro = s.handler(op)(fi.fh)
    except BaseException as e:
        _fail(s, req, op, e)
    else:
        _run(s, req, op, 0, None, coro, 0)


cdef void _sync_op(fuse_req_t req, int op, int datasync, fuse_file_info* fi) noexcept:
    # fsync, fsyncdir: the handler takes the file handle and a bool.
    cdef Session s = _s(req)
    try:
        coro = s.handler(op)(fi.fh, datasync != 0)
    except BaseException as e:
        _fail(s, req, op, e)
    else:
        _run(s, req, op, 0, None, coro, 0)


cdef void _cb_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    if not s.want & FUSE_CAP_POSIX_LOCKS:
        _fh_op(req, OP_FLUSH, fi)
        return
    # POSIX locks die with any close of the file by their owner; flush() has no owner
    # argument, so setlk(F_UNLCK) for the owner runs first.
    try:
        coro = flush_with_unlock(s.ops, fi.fh, fi.lock_owner)
    except BaseException as e:
        _fail(s, req, OP_FLUSH, e)
    else:
        _run(s, req, OP_FLUSH, 0, None, coro, 0)


cdef void _cb_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    if s.fills.backing.opens:  # passthrough opens exist: this one may hold a backing file
        s.fills.backing.release(req, ino, fi.fh)
    if not fi.flock_release:
        _fh_op(req, OP_RELEASE, fi)
        return
    # The last close of a file holding a BSD lock: the kernel expects the file system to drop
    # it, and release() has no owner argument, so flock(LOCK_UN) runs first.
    try:
        coro = release_with_unlock(s.ops, fi.fh, fi.lock_owner)
    except BaseException as e:
        _fail(s, req, OP_RELEASE, e)
    else:
        _run(s, req, OP_RELEASE, 0, None, coro, 0)


cdef void _cb_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    _s(req).fills.listing_closed(fi.fh)
    _fh_op(req, OP_RELEASEDIR, fi)


cdef void _cb_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) noexcept:
    _sync_op(req, OP_FSYNC, datasync, fi)


cdef void _cb_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                       fuse_file_info* fi) noexcept:
    _sync_op(req, OP_FSYNCDIR, datasync, fi)


cdef void _cb_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_OPENDIR)(ino, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_OPENDIR, e)
    else:
        _run(s, req, OP_OPENDIR, 0, None, coro, ino)


cdef void _cb_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      fuse_file_info* fi) noexcept:
    _readdir(req, ino, size, off, fi, False)


cdef void _cb_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          fuse_file_info* fi) noexcept:
    _readdir(req, ino, size, off, fi, True)


cdef void _readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                   bint plus) noexcept:
    cdef Session s = _s(req)
    token = None
    try:
        token = new_token(req, size, off, plus, s.fills, fi.fh, ino)
        coro = s.handler(OP_READDIR)(fi.fh, off, token)
    except BaseException as e:
        _fail(s, req, OP_READDIR, e, token)
    else:
        _run(s, req, OP_READDIR, 0, token, coro, 0)


cdef void _cb_statfs(fuse_req_t req, fuse_ino_t ino) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_STATFS)(context_of(req))
    except BaseException as e:
        _fail(s, req, OP_STATFS, e)
    else:
        _run(s, req, OP_STATFS, 0, None, coro, 0)


cdef void _cb_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                       size_t size, int flags) noexcept:
    cdef Session s = _s(req)
    try:
        b_name = <bytes>name
        if ino == FUSE_ROOT_ID and b_name == b"fuse_stacktrace":
            s.ops.stacktrace()
            fuse_reply_err(req, 0)
            return
        if flags:
            coro = setxattr_with_flags(s.ops, ino, b_name, value[:size], flags, context_of(req))
        else:
            coro = s.handler(OP_SETXATTR)(ino, b_name, value[:size], context_of(req))
    except BaseException as e:
        _fail(s, req, OP_SETXATTR, e)
    else:
        _run(s, req, OP_SETXATTR, 0, None, coro, 0)


cdef void _cb_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_GETXATTR)(ino, <bytes>name, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_GETXATTR, e)
    else:
        _run(s, req, OP_GETXATTR, size, None, coro, 0)


cdef void _cb_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_LISTXATTR)(ino, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_LISTXATTR, e)
    else:
        _run(s, req, OP_LISTXATTR, size, None, coro, 0)


cdef void _cb_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_REMOVEXATTR)(ino, <bytes>name, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_REMOVEXATTR, e)
    else:
        _run(s, req, OP_REMOVEXATTR, 0, None, coro, 0)


cdef void _cb_access(fuse_req_t req, fuse_ino_t ino, int mask) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_ACCESS)(ino, mask, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_ACCESS, e)
    else:
        _run(s, req, OP_ACCESS, 0, None, coro, 0)


cdef void _cb_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                     fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_CREATE)(parent, <bytes>name, mode, fi.flags, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_CREATE, e)
    else:
        _run(s, req, OP_CREATE, 0, None, coro, parent)


cdef void _cb_tmpfile(fuse_req_t req, fuse_ino_t parent, mode_t mode,
                      fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_TMPFILE)(parent, mode, fi.flags, context_of(req))
    except BaseException as e:
        _fail(s, req, OP_TMPFILE, e)
    else:
        _run(s, req, OP_TMPFILE, 0, None, coro, parent)


cdef void _cb_poll(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi,
                   fuse_pollhandle* ph) noexcept:
    # ph is NULL when the kernel wants only the current events (no later notification).
    cdef Session s = _s(req)
    handle = None
    try:
        if ph != NULL:
            handle = new_poll_handle(s, ph)
        coro = s.handler(OP_POLL)(ino, fi.fh, handle, context_of(req))
    except BaseException as e:
        if handle is None and ph != NULL:
            fuse_pollhandle_destroy(ph)
        _fail(s, req, OP_POLL, e)
    else:
        _run(s, req, OP_POLL, 0, None, coro, 0)


cdef void _cb_flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_FLOCK)(fi.fh, fi.lock_owner, op)
    except BaseException as e:
        _fail(s, req, OP_FLOCK, e)
    else:
        _run(s, req, OP_FLOCK, 0, None, coro, 0)


cdef void _cb_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                        fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_FALLOCATE)(fi.fh, mode, offset, length)
    except BaseException as e:
        _fail(s, req, OP_FALLOCATE, e)
    else:
        _run(s, req, OP_FALLOCATE, 0, None, coro, 0)


cdef void _cb_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    fuse_file_info* fi) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_LSEEK)(fi.fh, off, whence)
    except BaseException as e:
        _fail(s, req, OP_LSEEK, e)
    else:
        _run(s, req, OP_LSEEK, 0, None, coro, 0)


cdef void _cb_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                              fuse_file_info* fi_in, fuse_ino_t ino_out, off_t off_out,
                              fuse_file_info* fi_out, size_t length, int flags) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_COPY_FILE_RANGE)(fi_in.fh, off_in, fi_out.fh, off_out, length,
                                             flags)
    except BaseException as e:
        _fail(s, req, OP_COPY_FILE_RANGE, e)
    else:
        _run(s, req, OP_COPY_FILE_RANGE, length, None, coro, 0)


cdef void _cb_getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, c_flock* lock) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_GETLK)(fi.fh, fi.lock_owner, lock_of(lock))
    except BaseException as e:
        _fail(s, req, OP_GETLK, e)
    else:
        _run(s, req, OP_GETLK, 0, None, coro, 0)


cdef void _cb_setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, c_flock* lock,
                    int sleep) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_SETLK)(fi.fh, fi.lock_owner, lock_of(lock), sleep != 0)
    except BaseException as e:
        _fail(s, req, OP_SETLK, e)
    else:
        _run(s, req, OP_SETLK, 0, None, coro, 0)


cdef void _cb_bmap(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx) noexcept:
    cdef Session s = _s(req)
    try:
        coro = s.handler(OP_BMAP)(ino, blocksize, idx)
    except BaseException as e:
        _fail(s, req, OP_BMAP, e)
    else:
        _run(s, req, OP_BMAP, 0, None, coro, 0)


cdef void _cb_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg,
                    fuse_file_info* fi, unsigned flags, const void* in_buf, size_t in_bufsz,
                    size_t out_bufsz) noexcept:
    cdef Session s = _s(req)
    if flags & FUSE_IOCTL_UNRESTRICTED:  # only CUSE may send these; a reply needs iovecs
        fuse_reply_err(req, ENOSYS)
        return
    try:
        data = (<const char*>in_buf)[:in_bufsz] if in_bufsz else b""
        coro = s.handler(OP_IOCTL)(fi.fh, cmd, <size_t>arg, data, out_bufsz, flags)
    except BaseException as e:
        _fail(s, req, OP_IOCTL, e)
    else:
        _run(s, req, OP_IOCTL, out_bufsz, None, coro, 0)


cdef fuse_lowlevel_ops OPS


cdef void _fill_table(fuse_lowlevel_ops* t) noexcept:
    memset(t, 0, sizeof(fuse_lowlevel_ops))
    t.init = cb_init
    t.destroy = cb_destroy
    t.lookup = _cb_lookup
    t.forget = _cb_forget
    t.forget_multi = _cb_forget_multi
    t.getattr = _cb_getattr
    t.setattr = _cb_setattr
    t.readlink = _cb_readlink
    t.mknod = _cb_mknod
    t.mkdir = _cb_mkdir
    t.unlink = _cb_unlink
    t.rmdir = _cb_rmdir
    t.symlink = _cb_symlink
    t.rename = _cb_rename
    t.link = _cb_link
    t.open = _cb_open
    t.read = _cb_read
    t.write = _cb_write
    t.flush = _cb_flush
    t.release = _cb_release
    t.fsync = _cb_fsync
    t.opendir = _cb_opendir
    t.readdir = _cb_readdir
    t.readdirplus = _cb_readdirplus
    t.releasedir = _cb_releasedir
    t.fsyncdir = _cb_fsyncdir
    t.statfs = _cb_statfs
    t.setxattr = _cb_setxattr
    t.getxattr = _cb_getxattr
    t.listxattr = _cb_listxattr
    t.removexattr = _cb_removexattr
    t.access = _cb_access
    t.create = _cb_create
    t.poll = _cb_poll
    t.flock = _cb_flock
    t.fallocate = _cb_fallocate
    t.lseek = _cb_lseek
    t.copy_file_range = _cb_copy_file_range
    t.getlk = _cb_getlk
    t.setlk = _cb_setlk
    t.bmap = _cb_bmap
    t.ioctl = _cb_ioctl
    t.retrieve_reply = cb_retrieve_reply
    pyfuse3_set_tmpfile(t, _cb_tmpfile)
    pyfuse3_set_statx(t, _cb_statx)


_fill_table(&OPS)


#: The filled fuse_lowlevel_ops, for Session(); a capsule so no other module needs our C API.
lowlevel_ops = PyCapsule_New(<void*>&OPS, "pyfuse3.lowlevel_ops", NULL)
