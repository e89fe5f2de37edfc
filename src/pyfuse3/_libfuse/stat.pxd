# struct stat's POSIX.1-2008 timespec members (Cython 3.0's posix.stat declares only the
# time_t seconds): the one view of them, cast to from a struct_stat; and statx(2)'s struct
# (glibc 2.28+), which a statx() reply carries. Declarations only.
from libc.stdint cimport int64_t, uint16_t, uint32_t, uint64_t
from posix.time cimport timespec
from posix.types cimport dev_t

cdef extern from "<sys/stat.h>":
    struct stat_times "stat":
        timespec st_atim
        timespec st_mtim
        timespec st_ctim


cdef extern from "<sys/stat.h>" nogil:
    struct statx_timestamp:
        int64_t tv_sec
        uint32_t tv_nsec
    ctypedef struct struct_statx "struct statx":
        uint32_t stx_mask
        uint32_t stx_blksize
        uint32_t stx_nlink
        uint32_t stx_uid
        uint32_t stx_gid
        uint16_t stx_mode
        uint64_t stx_ino
        uint64_t stx_size
        uint64_t stx_blocks
        statx_timestamp stx_atime
        statx_timestamp stx_btime
        statx_timestamp stx_ctime
        statx_timestamp stx_mtime
        uint32_t stx_rdev_major
        uint32_t stx_rdev_minor
    enum: STATX_BASIC_STATS
    enum: STATX_BTIME


cdef extern from "<sys/sysmacros.h>" nogil:
    unsigned int major(dev_t dev)
    unsigned int minor(dev_t dev)
