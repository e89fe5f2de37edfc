from posix.fcntl cimport flock as c_flock
from posix.stat cimport struct_stat
from posix.time cimport timespec
from pyfuse3._libfuse.stat cimport struct_statx
from pyfuse3._libfuse.fuse_lowlevel cimport (
    fuse_entry_param, fuse_file_info, fuse_ino_t, fuse_req_t, statvfs,
)


cdef class EntryAttributes:
    cdef fuse_entry_param fuse_param
    cdef timespec birthtime              # reported through statx() only
    cdef bint has_birthtime


cdef class FileInfo:
    cdef public unsigned long long fh
    cdef public bint direct_io
    cdef public bint keep_cache
    cdef public bint nonseekable
    cdef public bint noflush
    cdef public bint cache_readdir
    cdef public bint changed             # close-to-open: drop what the kernel cached
    cdef public int backing_fd           # passthrough: the kernel reads/writes this file
    cdef void fill(self, fuse_file_info* out) noexcept


cdef class StatvfsData:
    cdef statvfs stat


cdef class FileRange:
    cdef readonly int fd
    cdef readonly long long offset
    cdef readonly size_t size


cdef class RequestContext:
    cdef readonly unsigned int uid
    cdef readonly unsigned int gid
    cdef readonly int pid
    cdef readonly unsigned int umask


cdef class SetattrFields:
    cdef readonly bint update_atime
    cdef readonly bint update_mtime
    cdef readonly bint update_ctime
    cdef readonly bint update_mode
    cdef readonly bint update_uid
    cdef readonly bint update_gid
    cdef readonly bint update_size


cdef class FUSEError(Exception):
    cdef readonly int errno_


#: Bit n is set for the file types (st_mode >> 12) the kernel accepts in attributes: FIFO,
#: CHR, DIR, BLK, REG, LNK, SOCK. Any other makes it answer EIO (and mark a known inode bad).
cdef enum:
    FILE_TYPES = 0x1556


cdef inline bint has_file_type(unsigned int mode) noexcept nogil:
    return (FILE_TYPES >> ((mode >> 12) & 15)) & 1


cdef int no_file_type(unsigned int mode, object name) except -1


cdef RequestContext context_of(fuse_req_t req)
cdef SetattrFields setattr_fields(int to_set)
cdef EntryAttributes attr_from_stat(fuse_ino_t ino, struct_stat* stat, int to_set)
cdef void statx_of(EntryAttributes attr, struct_statx* out) noexcept
cdef object lock_of(const c_flock* lock)
