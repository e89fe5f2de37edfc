/* The only hand-written C with logic in pyfuse3 (wire.h holds tables only): the libfuse API
   level we compile against. */
#ifndef PYFUSE3_CONFIG_H
#define PYFUSE3_CONFIG_H
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <errno.h>
#include <sys/stat.h>
#include <fuse_lowlevel.h>
/* expire_entry: 3.15+ only expires; 3.14 needs its flag (FUSE_LL_EXPIRE_ONLY) for that; older:
   not offered. */
static inline int pyfuse3_expire_entry(struct fuse_session *se, fuse_ino_t parent,
                                       const char *name, size_t namelen)
{
#if FUSE_VERSION >= 315
    return fuse_lowlevel_notify_expire_entry(se, parent, name, namelen);
#elif FUSE_VERSION >= 314
    return fuse_lowlevel_notify_expire_entry(se, parent, name, namelen, FUSE_LL_EXPIRE_ONLY);
#else
    (void)se; (void)parent; (void)name; (void)namelen;
    return -ENOSYS;
#endif
}
/* Epoch invalidation (fuse_lowlevel_notify_increment_epoch): libfuse 3.18+; older: not offered. */
#if FUSE_VERSION >= 318
#define PYFUSE3_HAVE_EPOCH 1
#define pyfuse3_increment_epoch(se) fuse_lowlevel_notify_increment_epoch(se)
#else
#define PYFUSE3_HAVE_EPOCH 0
#define pyfuse3_increment_epoch(se) ((void)(se), -ENOSYS)
#endif
/* Request timeouts (fuse_conn_info.request_timeout, seconds): libfuse 3.18+; older: not offered. */
#if FUSE_VERSION >= 318
#define PYFUSE3_HAVE_REQUEST_TIMEOUT 1
#define pyfuse3_set_request_timeout(conn, t) ((conn)->request_timeout = (t))
#else
#define PYFUSE3_HAVE_REQUEST_TIMEOUT 0
#define pyfuse3_set_request_timeout(conn, t) ((void)(conn), (void)(t))
#endif
/* Passthrough (fuse_passthrough_open/close, fuse_file_info.backing_id): libfuse 3.17+ with
   3.18's headers here; older: not offered (no backing id is ever set). */
#if FUSE_VERSION >= 318
#define PYFUSE3_HAVE_PASSTHROUGH 1
#define PYFUSE3_CAP_PASSTHROUGH FUSE_CAP_PASSTHROUGH
#define pyfuse3_set_backing_id(fi, id) ((fi)->backing_id = (id))
#define pyfuse3_set_max_backing_stack_depth(conn, d) ((conn)->max_backing_stack_depth = (d))
#define pyfuse3_passthrough_open(req, fd) fuse_passthrough_open(req, fd)
#define pyfuse3_passthrough_close(req, id) fuse_passthrough_close(req, id)
#else
#define PYFUSE3_HAVE_PASSTHROUGH 0
#define PYFUSE3_CAP_PASSTHROUGH 0
#define pyfuse3_set_backing_id(fi, id) ((void)(fi), (void)(id))
#define pyfuse3_set_max_backing_stack_depth(conn, d) ((void)(conn), (void)(d))
#define pyfuse3_passthrough_open(req, fd) ((void)(req), (void)(fd), 0)
#define pyfuse3_passthrough_close(req, id) ((void)(req), (void)(id), -ENOSYS)
#endif
/* FUSE over io_uring (libfuse 3.18 starts its ring threads when this is wanted and the session
   enables it); older: no such capability. */
#if FUSE_VERSION >= 318
#define PYFUSE3_CAP_OVER_IO_URING ((unsigned int)FUSE_CAP_OVER_IO_URING)
#else
#define PYFUSE3_CAP_OVER_IO_URING 0u
#endif
/* tmpfile (O_TMPFILE), a fuse_lowlevel_ops field of libfuse 3.18 here; older: not offered. */
#if FUSE_VERSION >= 318
#define PYFUSE3_HAVE_TMPFILE 1
#define pyfuse3_set_tmpfile(t, fn) ((t)->tmpfile = (fn))
#define pyfuse3_tmpfile_filled(t) ((t)->tmpfile != NULL)
#else
#define PYFUSE3_HAVE_TMPFILE 0
#define pyfuse3_set_tmpfile(t, fn) ((void)(t), (void)(fn))
#define pyfuse3_tmpfile_filled(t) 0
#endif
/* statx (birth time), a fuse_lowlevel_ops field and reply of libfuse 3.18 here (its reply answers
   ENOSYS when libfuse itself was built without statx); older: not offered. */
#if FUSE_VERSION >= 318
#define PYFUSE3_HAVE_STATX 1
#define pyfuse3_set_statx(t, fn) ((t)->statx = (fn))
#define pyfuse3_statx_filled(t) ((t)->statx != NULL)
#define pyfuse3_reply_statx(req, stx, timeout) fuse_reply_statx(req, 0, stx, timeout)
#else
#define PYFUSE3_HAVE_STATX 0
#define pyfuse3_set_statx(t, fn) ((void)(t), (void)(fn))
#define pyfuse3_statx_filled(t) 0
#define pyfuse3_reply_statx(req, stx, timeout) ((void)(stx), (void)(timeout), \
                                                fuse_reply_err(req, ENOSYS))
#endif
#endif
