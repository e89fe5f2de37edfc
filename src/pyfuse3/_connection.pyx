# cython: language_level=3, binding=False
"""The callbacks that answer no request: INIT (what the connection will use), DESTROY, and
the kernel's replies to notify_retrieve. The policy of INIT is ``_negotiation``'s; here only
libfuse's ``fuse_conn_info`` is read and written. ``_callbacks`` puts these in its table.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.string cimport memset
from pyfuse3._libfuse.fuse_lowlevel cimport (
    FUSE_CAP_ASYNC_DIO, FUSE_CAP_ASYNC_READ, FUSE_CAP_ATOMIC_O_TRUNC, FUSE_CAP_AUTO_INVAL_DATA,
    FUSE_CAP_CACHE_SYMLINKS, FUSE_CAP_DONT_MASK, FUSE_CAP_EXPIRE_ONLY,
    FUSE_CAP_EXPLICIT_INVAL_DATA, FUSE_CAP_EXPORT_SUPPORT, FUSE_CAP_FLOCK_LOCKS,
    FUSE_CAP_HANDLE_KILLPRIV, FUSE_CAP_IOCTL_DIR, FUSE_CAP_NO_OPEN_SUPPORT,
    FUSE_CAP_NO_OPENDIR_SUPPORT, FUSE_CAP_PARALLEL_DIROPS, FUSE_CAP_POSIX_ACL,
    FUSE_CAP_POSIX_LOCKS, FUSE_CAP_READDIRPLUS, FUSE_CAP_READDIRPLUS_AUTO, FUSE_CAP_SPLICE_MOVE,
    FUSE_CAP_SPLICE_READ, FUSE_CAP_SPLICE_WRITE, FUSE_CAP_WRITEBACK_CACHE,
    fuse_apply_conn_info_opts, fuse_buf_copy, fuse_buf_copy_flags, fuse_buf_size,
    FUSE_VERSION, PYFUSE3_CAP_OVER_IO_URING, PYFUSE3_CAP_PASSTHROUGH, PYFUSE3_HAVE_PASSTHROUGH,
    PYFUSE3_HAVE_REQUEST_TIMEOUT, fuse_pkgversion, fuse_reply_none, fuse_req_userdata,
    pyfuse3_set_max_backing_stack_depth, pyfuse3_set_request_timeout,
)
from pyfuse3._session cimport Session

import logging
import os

from pyfuse3._negotiation import (
    default_want, names, negotiate, passthrough_unavailable, undelivered,
)
from pyfuse3._pyfuse3 import ConnectionInfo

log = logging.getLogger("pyfuse3")

#: The libfuse loaded, e.g. "3.18.3" (the one bundled, built by make build, or the system's).
LIBFUSE_VERSION: str = fuse_pkgversion().decode()


#: libfuse's capability flags by the names ConnectionInfo uses.
CAPABILITIES = {
    "async_read": FUSE_CAP_ASYNC_READ, "posix_locks": FUSE_CAP_POSIX_LOCKS,
    "atomic_o_trunc": FUSE_CAP_ATOMIC_O_TRUNC, "export_support": FUSE_CAP_EXPORT_SUPPORT,
    "dont_mask": FUSE_CAP_DONT_MASK, "splice_write": FUSE_CAP_SPLICE_WRITE,
    "splice_move": FUSE_CAP_SPLICE_MOVE, "splice_read": FUSE_CAP_SPLICE_READ,
    "flock_locks": FUSE_CAP_FLOCK_LOCKS, "ioctl_dir": FUSE_CAP_IOCTL_DIR,
    "auto_inval_data": FUSE_CAP_AUTO_INVAL_DATA, "readdirplus": FUSE_CAP_READDIRPLUS,
    "readdirplus_auto": FUSE_CAP_READDIRPLUS_AUTO, "async_dio": FUSE_CAP_ASYNC_DIO,
    "writeback_cache": FUSE_CAP_WRITEBACK_CACHE, "no_open_support": FUSE_CAP_NO_OPEN_SUPPORT,
    "parallel_dirops": FUSE_CAP_PARALLEL_DIROPS, "posix_acl": FUSE_CAP_POSIX_ACL,
    "handle_killpriv": FUSE_CAP_HANDLE_KILLPRIV, "cache_symlinks": FUSE_CAP_CACHE_SYMLINKS,
    "no_opendir_support": FUSE_CAP_NO_OPENDIR_SUPPORT,
    "explicit_inval_data": FUSE_CAP_EXPLICIT_INVAL_DATA, "expire_only": FUSE_CAP_EXPIRE_ONLY,
}
if PYFUSE3_HAVE_PASSTHROUGH:
    CAPABILITIES["passthrough"] = PYFUSE3_CAP_PASSTHROUGH
cdef unsigned int NAMED_CAPS = 0
for _bit in CAPABILITIES.values():
    NAMED_CAPS |= _bit
#: What this libfuse would drop on the way to the kernel (name -> why): never shown as offered.
UNDELIVERED = undelivered(LIBFUSE_VERSION)
cdef unsigned int UNDELIVERED_CAPS = 0
for _name in UNDELIVERED:
    UNDELIVERED_CAPS |= CAPABILITIES[_name]

cdef void cb_init(void* userdata, fuse_conn_info* conn) noexcept:
    # What is asked for: see _negotiation (the policy); here only libfuse's struct is read and
    # written, and the conn-info mount options are applied between the two layers. An
    # interrupt (KeyboardInterrupt, SystemExit) is kept for main() to raise, never logged.
    cdef Session s = <Session>userdata
    try:
        _init(s, conn)
    except BaseException as e:
        s.took(e)
    finally:
        # Also when an interrupt skipped _init's: libfuse's own ring threads would call the
        # handlers without the GIL (crashed under FUSE_URING_ENABLE=1).
        conn.want &= ~PYFUSE3_CAP_OVER_IO_URING


cdef _init(Session s, fuse_conn_info* conn):
    cdef unsigned int want
    ops = s.ops
    try:
        conn.want = default_want(ops, conn.capable, conn.want, s.readdirplus, CAPABILITIES)
        conn.max_read = s.max_read  # libfuse refuses INIT unless init() repeats max_read=
        if s.conn_opts != NULL:  # the conn-info mount options (max_write=, readdirplus= ...)
            fuse_apply_conn_info_opts(s.conn_opts, conn)
        conn.want &= conn.capable  # an option may ask for what the kernel lacks
    except Exception:
        log.exception("negotiating the FUSE connection failed")
    try:
        info = ConnectionInfo(conn.proto_major, conn.proto_minor,
                              names(conn.capable & ~UNDELIVERED_CAPS, CAPABILITIES),
                              set(names(conn.want & ~UNDELIVERED_CAPS, CAPABILITIES)),
                              conn.max_write, conn.max_read, conn.max_readahead,
                              conn.max_background, conn.congestion_threshold, conn.time_gran,
                              s.request_timeout)
        want, limits = negotiate(ops, info, CAPABILITIES,
                                 request_timeouts=bool(PYFUSE3_HAVE_REQUEST_TIMEOUT),
                                 unsent=UNDELIVERED)
        conn.want = (conn.want & ~NAMED_CAPS) | <unsigned int>want
        conn.max_write, conn.max_readahead, conn.max_background = limits[0], limits[1], limits[2]
        conn.congestion_threshold, conn.time_gran = limits[3], limits[4]
        pyfuse3_set_request_timeout(conn, limits[5])
        s.request_timeout = limits[5]
        pyfuse3_set_max_backing_stack_depth(conn, limits[6])
    except Exception as e:
        s.took(e)  # main() raises it
    # libfuse wants the rings by default where the kernel offers them, and would start ring
    # threads of its own if its session enabled them (FUSE_URING_ENABLE=1 in the environment):
    # they would call the handlers off the event loop. pyfuse3's own ring (_ring, mount option
    # io_uring) announces itself in the INIT answer instead.
    conn.want &= ~PYFUSE3_CAP_OVER_IO_URING
    if s.ring is not None:
        s.ring.offer(bool(conn.capable & PYFUSE3_CAP_OVER_IO_URING))
        if not conn.capable & PYFUSE3_CAP_OVER_IO_URING:
            log.warning("%s: mount option io_uring: the kernel did not offer FUSE over io_uring "
                        "at INIT; requests come through /dev/fuse", s.mountpoint)
    s.note_init(conn.capable, conn.want)
    s.fills.backing.enabled = bool(conn.want & PYFUSE3_CAP_PASSTHROUGH)
    s.fills.backing.unavailable = passthrough_unavailable(
        ops, bool(PYFUSE3_HAVE_PASSTHROUGH), bool(conn.capable & PYFUSE3_CAP_PASSTHROUGH),
        bool(conn.want & PYFUSE3_CAP_PASSTHROUGH), f"3.{FUSE_VERSION % 100}")
    try:
        ops.init()
    except Exception:
        log.exception("init() handler failed; the file system keeps running")


cdef void cb_destroy(void* userdata) noexcept with gil:
    # From fuse_session_destroy() (GIL released, or Session.__dealloc__) or a DESTROY request.
    cdef Session s = <Session>userdata
    ops = s.ops
    if ops is None:  # a garbage-collected session whose fields were already cleared
        return
    try:
        ops.destroy()
    except BaseException:
        log.exception("destroy() handler failed")


cdef void cb_retrieve_reply(fuse_req_t req, void* cookie, fuse_ino_t ino, off_t offset,
                            fuse_bufvec* bufv) noexcept:
    # The kernel's answer to notify_retrieve: no reply is expected. on_reply gets the bytes,
    # or an OSError if they could not be copied out of libfuse's buffer.
    cdef Session s = <Session>fuse_req_userdata(req)
    cdef fuse_bufvec dst
    cdef ssize_t copied
    fuse_reply_none(req)
    try:
        on_reply = s.pop_retrieval(<size_t>cookie)
        data = PyBytes_FromStringAndSize(NULL, fuse_buf_size(bufv))
        memset(&dst, 0, sizeof(dst))
        dst.count = 1
        dst.buf[0].mem = PyBytes_AS_STRING(data)
        dst.buf[0].size = len(data)
        dst.buf[0].fd = -1
        copied = fuse_buf_copy(&dst, bufv, <fuse_buf_copy_flags>0)
        if copied < 0:
            data = OSError(-copied, f"notify_retrieve: copying the kernel's data failed: "
                           f"{os.strerror(-copied)}")
        elif copied < len(data):
            data = data[:copied]
        if on_reply is not None:
            on_reply(data)
    except BaseException:
        log.exception("delivering retrieved cache data failed")
