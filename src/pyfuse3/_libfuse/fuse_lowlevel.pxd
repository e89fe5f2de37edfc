# Declarations of <fuse_lowlevel.h> and <fuse_common.h> as shipped by libfuse 3.14.
# Declarations only: no code lives here.
from libc.stdint cimport uint32_t, uint64_t
from posix.types cimport dev_t, gid_t, mode_t, off_t, pid_t, uid_t
from posix.stat cimport struct_stat
from pyfuse3._libfuse.stat cimport struct_statx
from posix.fcntl cimport flock as c_flock
from posix.uio cimport iovec


cdef extern from "<sys/statvfs.h>" nogil:
    struct statvfs:
        unsigned long f_bsize
        unsigned long f_frsize
        unsigned long f_blocks
        unsigned long f_bfree
        unsigned long f_bavail
        unsigned long f_files
        unsigned long f_ffree
        unsigned long f_favail
        unsigned long f_fsid
        unsigned long f_flag
        unsigned long f_namemax


cdef extern from "_libfuse/config.h" nogil:
    int FUSE_VERSION  # the headers compiled against (314, 318...)
    int fuse_version()  # the library loaded, e.g. 318
    const char* fuse_pkgversion()  # the library loaded, e.g. "3.18.3"
    enum: PYFUSE3_HAVE_EPOCH  # compiled against libfuse 3.18+: increment_epoch exists
    enum: PYFUSE3_HAVE_REQUEST_TIMEOUT  # compiled against libfuse 3.18+: conn.request_timeout
    enum: PYFUSE3_HAVE_PASSTHROUGH  # compiled against libfuse 3.18+: backing files
    enum: PYFUSE3_CAP_PASSTHROUGH  # FUSE_CAP_PASSTHROUGH, or 0 before libfuse 3.18
    enum: PYFUSE3_CAP_OVER_IO_URING  # FUSE_CAP_OVER_IO_URING, or 0 before libfuse 3.18
    enum: PYFUSE3_HAVE_TMPFILE  # compiled against libfuse 3.18+: fuse_lowlevel_ops.tmpfile
    enum: PYFUSE3_HAVE_STATX  # compiled against libfuse 3.18+: fuse_lowlevel_ops.statx

    ctypedef uint64_t fuse_ino_t
    enum: FUSE_ROOT_ID

    struct fuse_req:
        pass
    ctypedef fuse_req* fuse_req_t

    struct fuse_session:
        pass
    struct fuse_pollhandle:
        pass

    struct fuse_args:
        int argc
        char** argv
        int allocated

    struct fuse_file_info:
        int flags
        unsigned int writepage
        unsigned int direct_io
        unsigned int keep_cache
        unsigned int flush
        unsigned int nonseekable
        unsigned int flock_release
        unsigned int cache_readdir
        unsigned int noflush
        uint64_t fh
        uint64_t lock_owner
        uint32_t poll_events

    struct fuse_conn_info:
        unsigned proto_major
        unsigned proto_minor
        unsigned max_write
        unsigned max_read
        unsigned max_readahead
        unsigned capable
        unsigned want
        unsigned max_background
        unsigned congestion_threshold
        unsigned time_gran

    enum fuse_buf_flags:
        FUSE_BUF_IS_FD
        FUSE_BUF_FD_SEEK
        FUSE_BUF_FD_RETRY

    enum fuse_buf_copy_flags:
        FUSE_BUF_NO_SPLICE
        FUSE_BUF_FORCE_SPLICE
        FUSE_BUF_SPLICE_MOVE
        FUSE_BUF_SPLICE_NONBLOCK

    struct fuse_buf:
        size_t size
        fuse_buf_flags flags
        void* mem
        int fd
        off_t pos

    struct fuse_bufvec:
        size_t count
        size_t idx
        size_t off
        fuse_buf buf[1]

    size_t fuse_buf_size(const fuse_bufvec* bufv)
    ssize_t fuse_buf_copy(fuse_bufvec* dst, fuse_bufvec* src, fuse_buf_copy_flags flags)

    struct fuse_entry_param:
        fuse_ino_t ino
        uint64_t generation
        struct_stat attr
        double attr_timeout
        double entry_timeout

    struct fuse_ctx:
        uid_t uid
        gid_t gid
        pid_t pid
        mode_t umask

    struct fuse_forget_data:
        fuse_ino_t ino
        uint64_t nlookup

    enum:
        FUSE_CAP_ASYNC_READ
        FUSE_CAP_POSIX_LOCKS
        FUSE_CAP_ATOMIC_O_TRUNC
        FUSE_CAP_EXPORT_SUPPORT
        FUSE_CAP_DONT_MASK
        FUSE_CAP_SPLICE_WRITE
        FUSE_CAP_SPLICE_MOVE
        FUSE_CAP_SPLICE_READ
        FUSE_CAP_FLOCK_LOCKS
        FUSE_CAP_IOCTL_DIR
        FUSE_CAP_AUTO_INVAL_DATA
        FUSE_CAP_READDIRPLUS
        FUSE_CAP_READDIRPLUS_AUTO
        FUSE_CAP_ASYNC_DIO
        FUSE_CAP_WRITEBACK_CACHE
        FUSE_CAP_NO_OPEN_SUPPORT
        FUSE_CAP_PARALLEL_DIROPS
        FUSE_CAP_POSIX_ACL
        FUSE_CAP_HANDLE_KILLPRIV
        FUSE_CAP_CACHE_SYMLINKS
        FUSE_CAP_NO_OPENDIR_SUPPORT
        FUSE_CAP_EXPLICIT_INVAL_DATA
        FUSE_CAP_EXPIRE_ONLY

    enum:
        FUSE_IOCTL_COMPAT
        FUSE_IOCTL_UNRESTRICTED
        FUSE_IOCTL_DIR

    struct fuse_conn_info_opts:
        pass
    fuse_conn_info_opts* fuse_parse_conn_info_opts(fuse_args* args)
    void fuse_apply_conn_info_opts(fuse_conn_info_opts* opts, fuse_conn_info* conn)

    enum:
        FUSE_SET_ATTR_MODE
        FUSE_SET_ATTR_UID
        FUSE_SET_ATTR_GID
        FUSE_SET_ATTR_SIZE
        FUSE_SET_ATTR_ATIME
        FUSE_SET_ATTR_MTIME
        FUSE_SET_ATTR_ATIME_NOW
        FUSE_SET_ATTR_MTIME_NOW
        FUSE_SET_ATTR_CTIME

    struct fuse_lowlevel_ops:
        void (*init)(void* userdata, fuse_conn_info* conn)
        void (*destroy)(void* userdata)
        void (*lookup)(fuse_req_t req, fuse_ino_t parent, const char* name)
        void (*forget)(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
        void (*getattr)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*setattr)(fuse_req_t req, fuse_ino_t ino, struct_stat* attr, int to_set,
                        fuse_file_info* fi)
        void (*readlink)(fuse_req_t req, fuse_ino_t ino)
        void (*mknod)(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                      dev_t rdev)
        void (*mkdir)(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode)
        void (*unlink)(fuse_req_t req, fuse_ino_t parent, const char* name)
        void (*rmdir)(fuse_req_t req, fuse_ino_t parent, const char* name)
        void (*symlink)(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name)
        void (*rename)(fuse_req_t req, fuse_ino_t parent, const char* name,
                       fuse_ino_t newparent, const char* newname, unsigned int flags)
        void (*link)(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname)
        void (*open)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*read)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi)
        void (*write)(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
                      fuse_file_info* fi)
        void (*flush)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*release)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*fsync)(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi)
        void (*opendir)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*readdir)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        fuse_file_info* fi)
        void (*releasedir)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi)
        void (*fsyncdir)(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi)
        void (*statfs)(fuse_req_t req, fuse_ino_t ino)
        void (*setxattr)(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                         size_t size, int flags)
        void (*getxattr)(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size)
        void (*listxattr)(fuse_req_t req, fuse_ino_t ino, size_t size)
        void (*removexattr)(fuse_req_t req, fuse_ino_t ino, const char* name)
        void (*access)(fuse_req_t req, fuse_ino_t ino, int mask)
        void (*create)(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                       fuse_file_info* fi)
        void (*poll)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi,
                     fuse_pollhandle* ph)
        void (*flock)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op)
        void (*getlk)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, c_flock* lock)
        void (*setlk)(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, c_flock* lock,
                      int sleep)
        void (*bmap)(fuse_req_t req, fuse_ino_t ino, size_t blocksize, uint64_t idx)
        void (*ioctl)(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg,
                      fuse_file_info* fi, unsigned flags, const void* in_buf, size_t in_bufsz,
                      size_t out_bufsz)
        void (*fallocate)(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                          fuse_file_info* fi)
        void (*copy_file_range)(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                                fuse_file_info* fi_in, fuse_ino_t ino_out, off_t off_out,
                                fuse_file_info* fi_out, size_t len, int flags)
        void (*lseek)(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi)
        void (*retrieve_reply)(fuse_req_t req, void* cookie, fuse_ino_t ino, off_t offset,
                               fuse_bufvec* bufv)
        void (*forget_multi)(fuse_req_t req, size_t count, fuse_forget_data* forgets)
        void (*readdirplus)(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                            fuse_file_info* fi)

    # replies
    int fuse_reply_err(fuse_req_t req, int err)
    void fuse_reply_none(fuse_req_t req)
    int fuse_reply_entry(fuse_req_t req, const fuse_entry_param* e)
    int fuse_reply_create(fuse_req_t req, const fuse_entry_param* e, const fuse_file_info* fi)
    int fuse_reply_attr(fuse_req_t req, const struct_stat* attr, double attr_timeout)
    # fuse_reply_statx (libfuse 3.18) with flags 0; older: answers ENOSYS
    int pyfuse3_reply_statx(fuse_req_t req, struct_statx* stx, double attr_timeout)
    int fuse_reply_readlink(fuse_req_t req, const char* link)
    int fuse_reply_open(fuse_req_t req, const fuse_file_info* fi)
    int fuse_reply_write(fuse_req_t req, size_t count)
    int fuse_reply_buf(fuse_req_t req, const char* buf, size_t size)
    int fuse_reply_data(fuse_req_t req, fuse_bufvec* bufv, fuse_buf_copy_flags flags)
    int fuse_reply_statfs(fuse_req_t req, const statvfs* stbuf)
    int fuse_reply_xattr(fuse_req_t req, size_t count)
    int fuse_reply_poll(fuse_req_t req, unsigned revents)
    int fuse_reply_lseek(fuse_req_t req, off_t off)
    int fuse_reply_lock(fuse_req_t req, const c_flock* lock)
    int fuse_reply_bmap(fuse_req_t req, uint64_t idx)
    int fuse_reply_ioctl(fuse_req_t req, int result, const void* buf, size_t size)
    void fuse_pollhandle_destroy(fuse_pollhandle* ph)
    int fuse_lowlevel_notify_poll(fuse_pollhandle* ph)
    size_t fuse_add_direntry(fuse_req_t req, char* buf, size_t bufsize, const char* name,
                             const struct_stat* stbuf, off_t off)
    size_t fuse_add_direntry_plus(fuse_req_t req, char* buf, size_t bufsize, const char* name,
                                  const fuse_entry_param* e, off_t off)

    # request context and interrupts
    ctypedef void (*fuse_interrupt_func_t)(fuse_req_t req, void* data) noexcept
    void fuse_req_interrupt_func(fuse_req_t req, fuse_interrupt_func_t func, void* data)
    int fuse_req_interrupted(fuse_req_t req)
    void* fuse_req_userdata(fuse_req_t req)
    const fuse_ctx* fuse_req_ctx(fuse_req_t req)

    # notifications
    int fuse_lowlevel_notify_inval_inode(fuse_session* se, fuse_ino_t ino, off_t off, off_t len)
    int fuse_lowlevel_notify_inval_entry(fuse_session* se, fuse_ino_t parent, const char* name,
                                         size_t namelen)
    # wrapper from config.h: fuse_lowlevel_notify_expire_entry(..., FUSE_LL_EXPIRE_ONLY)
    int pyfuse3_expire_entry(fuse_session* se, fuse_ino_t parent, const char* name,
                             size_t namelen)
    # from config.h: fuse_lowlevel_notify_increment_epoch, or -ENOSYS before libfuse 3.18
    int pyfuse3_increment_epoch(fuse_session* se)
    # from config.h: conn->request_timeout = seconds (nothing before libfuse 3.18)
    void pyfuse3_set_max_backing_stack_depth(fuse_conn_info* conn, unsigned int depth)
    void pyfuse3_set_request_timeout(fuse_conn_info* conn, unsigned int seconds)
    # from config.h: passthrough (no-ops, 0 and -ENOSYS before libfuse 3.18)
    void pyfuse3_set_backing_id(fuse_file_info* fi, int backing_id)
    int pyfuse3_passthrough_open(fuse_req_t req, int fd)  # backing id, or 0 (errno set)
    int pyfuse3_passthrough_close(fuse_req_t req, int backing_id)
    int fuse_lowlevel_notify_delete(fuse_session* se, fuse_ino_t parent, fuse_ino_t child,
                                    const char* name, size_t namelen)
    int fuse_lowlevel_notify_store(fuse_session* se, fuse_ino_t ino, off_t offset,
                                   fuse_bufvec* bufv, fuse_buf_copy_flags flags)
    int fuse_lowlevel_notify_retrieve(fuse_session* se, fuse_ino_t ino, size_t size,
                                      off_t offset, void* cookie)

    # session
    struct fuse_custom_io:
        ssize_t (*writev)(int fd, iovec* iov, int count, void* userdata) noexcept
        ssize_t (*read)(int fd, void* buf, size_t buf_len, void* userdata) noexcept
        ssize_t (*splice_receive)(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                                  unsigned int flags, void* userdata) noexcept
        ssize_t (*splice_send)(int fdin, off_t* offin, int fdout, off_t* offout, size_t len,
                               unsigned int flags, void* userdata) noexcept
    int fuse_session_custom_io(fuse_session* se, const fuse_custom_io* io, int fd)
    fuse_session* fuse_session_new(fuse_args* args, const fuse_lowlevel_ops* op,
                                   size_t op_size, void* userdata)
    int fuse_session_mount(fuse_session* se, const char* mountpoint)
    void fuse_session_exit(fuse_session* se)
    int fuse_session_exited(fuse_session* se)
    void fuse_session_reset(fuse_session* se)
    void fuse_session_unmount(fuse_session* se)
    void fuse_session_destroy(fuse_session* se)
    void fuse_opt_free_args(fuse_args* args)
    int fuse_session_fd(fuse_session* se)
    int fuse_session_receive_buf(fuse_session* se, fuse_buf* buf)
    void fuse_session_process_buf(fuse_session* se, const fuse_buf* buf)


# From config.h (outside the nogil block: the trampolines they take hold the GIL): the
# fuse_lowlevel_ops.tmpfile field of libfuse 3.18 (nothing, and never filled, before)...
cdef extern from "_libfuse/config.h":
    ctypedef void (*pyfuse3_tmpfile_fn)(fuse_req_t req, fuse_ino_t parent, mode_t mode,
                                        fuse_file_info* fi) noexcept
    void pyfuse3_set_tmpfile(fuse_lowlevel_ops* t, pyfuse3_tmpfile_fn fn)
    bint pyfuse3_tmpfile_filled(const fuse_lowlevel_ops* t)
    # and its statx field (libfuse 3.18; nothing, and never filled, before)
    ctypedef void (*pyfuse3_statx_fn)(fuse_req_t req, fuse_ino_t ino, int flags, int mask,
                                      fuse_file_info* fi) noexcept
    void pyfuse3_set_statx(fuse_lowlevel_ops* t, pyfuse3_statx_fn fn)
    bint pyfuse3_statx_filled(const fuse_lowlevel_ops* t)
