/* The FUSE protocol header: the one of the libfuse we link when its build installed it
   (tools/build-libfuse does), else the system's <linux/fuse.h>. */
#ifndef PYFUSE3_KERNEL_H
#define PYFUSE3_KERNEL_H
#if __has_include(<fuse_kernel.h>)
#include <fuse_kernel.h>
#else
#include <linux/fuse.h>
#endif
/* FUSE_STATX (protocol 7.39) is an enumerator, so #ifdef cannot see it: name it by number when
   the header predates it (only the opcode table needs it then; no statx request is handled). */
#if FUSE_KERNEL_MINOR_VERSION < 39
#define FUSE_STATX 52
#endif
#endif
