# Declarations of the kernel's FUSE protocol (_libfuse/kernel.h: libfuse's fuse_kernel.h or
# <linux/fuse.h>): the opcodes of the requests.
# Declarations only: no code lives here.

cdef extern from "_libfuse/kernel.h" nogil:
    enum fuse_opcode:
        FUSE_LOOKUP
        FUSE_FORGET
        FUSE_GETATTR
        FUSE_SETATTR
        FUSE_READLINK
        FUSE_SYMLINK
        FUSE_MKNOD
        FUSE_MKDIR
        FUSE_UNLINK
        FUSE_RMDIR
        FUSE_RENAME
        FUSE_LINK
        FUSE_OPEN
        FUSE_READ
        FUSE_WRITE
        FUSE_STATFS
        FUSE_RELEASE
        FUSE_FSYNC
        FUSE_SETXATTR
        FUSE_GETXATTR
        FUSE_LISTXATTR
        FUSE_REMOVEXATTR
        FUSE_FLUSH
        FUSE_INIT
        FUSE_OPENDIR
        FUSE_READDIR
        FUSE_RELEASEDIR
        FUSE_FSYNCDIR
        FUSE_ACCESS
        FUSE_CREATE
        FUSE_INTERRUPT
        FUSE_DESTROY
        FUSE_IOCTL
        FUSE_TMPFILE
        FUSE_STATX
        FUSE_BMAP
        FUSE_GETLK
        FUSE_SETLK
        FUSE_SETLKW
        FUSE_POLL
        FUSE_FALLOCATE
        FUSE_LSEEK
        FUSE_COPY_FILE_RANGE
        FUSE_BATCH_FORGET
        FUSE_READDIRPLUS
        FUSE_RENAME2
        FUSE_NOTIFY_REPLY

    # The parts of the request layouts that decide whether a request may wait (parked).
    struct fuse_in_header:
        unsigned int len
        unsigned int opcode
        unsigned long long unique
        unsigned long long nodeid
        unsigned int uid
        unsigned int gid
        unsigned int pid

    struct fuse_out_header:
        unsigned int len
        int error
        unsigned long long unique

    # What a transport that rewrites the INIT answer (_ring) needs of it.
    struct fuse_init_out:
        unsigned int flags
        unsigned int max_write
        unsigned short max_pages
        unsigned int flags2

    struct fuse_interrupt_in:
        unsigned long long unique

    struct fuse_file_lock:
        unsigned int type

    struct fuse_lk_in:
        fuse_file_lock lk
