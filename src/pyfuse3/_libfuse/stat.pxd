# struct stat's POSIX.1-2008 timespec members (Cython 3.0's posix.stat declares only the
# time_t seconds): the one view of them, cast to from a struct_stat. Declarations only.
from posix.time cimport timespec

cdef extern from "<sys/stat.h>":
    struct stat_times "stat":
        timespec st_atim
        timespec st_mtim
        timespec st_ctim
