/* FUSE over io_uring, driven by pyfuse3's own event loop (_ring.pyx): liburing and the protocol's
   ring structures (fuse_kernel.h 7.42+). setup.py defines PYFUSE3_WITH_LIBURING and links
   liburing when pkg-config finds it. Without either, stand-ins that never run: Ring() refuses to
   start (PYFUSE3_HAVE_URING is 0) before any of them is called. */
#ifndef PYFUSE3_URING_H
#define PYFUSE3_URING_H
#include "_libfuse/kernel.h"
#include <errno.h>
#include <stdint.h>
#if defined(PYFUSE3_WITH_LIBURING) && FUSE_KERNEL_MINOR_VERSION >= 42
#include <liburing.h>
#define PYFUSE3_HAVE_URING 1
#define PYFUSE3_OVER_IO_URING_FLAGS2 ((uint32_t)(FUSE_OVER_IO_URING >> 32))
/* The 80-byte command area of a 128-byte SQE holds the FUSE command. */
#define pyfuse3_sqe_cmd(sqe) ((struct fuse_uring_cmd_req *)(void *)&(sqe)->cmd[0])
#define PYFUSE3_SQE_SIZE 128
/* COOP_TASKRUN: the kernel does not interrupt the loop to hand over a request; the work is done
   at its next system call, and this flag says when it waits (io_uring_get_events runs it). */
#define pyfuse3_ring_taskrun(r) (IO_URING_READ_ONCE(*(r)->sq.kflags) & IORING_SQ_TASKRUN)
#else
#define PYFUSE3_HAVE_URING 0
#define PYFUSE3_OVER_IO_URING_FLAGS2 0u
#define IORING_SETUP_SQE128 0u
#define IORING_SETUP_CQSIZE 0u
#define IORING_SETUP_COOP_TASKRUN 0u
#define IORING_SETUP_TASKRUN_FLAG 0u
#define pyfuse3_ring_taskrun(r) ((void)(r), 0)
#define IORING_OP_URING_CMD 0
#define IORING_CQE_F_MORE 0u
#if FUSE_KERNEL_MINOR_VERSION < 42
#define FUSE_URING_IN_OUT_HEADER_SZ 128
#define FUSE_URING_OP_IN_OUT_SZ 128
enum { FUSE_IO_URING_CMD_REGISTER = 1, FUSE_IO_URING_CMD_COMMIT_AND_FETCH = 2 };
struct fuse_uring_ent_in_out { uint64_t flags, commit_id; uint32_t payload_sz, padding;
                               uint64_t reserved; };
struct fuse_uring_req_header { char in_out[128]; char op_in[128];
                               struct fuse_uring_ent_in_out ring_ent_in_out; };
struct fuse_uring_cmd_req { uint64_t flags, commit_id; uint16_t qid; uint8_t padding[6]; };
#endif
struct io_uring_sqe { uint8_t opcode, flags; int32_t fd; uint64_t addr; uint32_t len;
                      uint32_t cmd_op; };
struct io_uring_cqe { uint64_t user_data; int32_t res; uint32_t flags; };
struct io_uring { int ring_fd; };
struct io_uring_params { uint32_t flags, cq_entries; };
static struct fuse_uring_cmd_req pyfuse3_no_cmd __attribute__((unused));
#define pyfuse3_sqe_cmd(sqe) ((void)(sqe), &pyfuse3_no_cmd)
#define PYFUSE3_SQE_SIZE sizeof(struct io_uring_sqe)
static inline int io_uring_queue_init_params(unsigned n, struct io_uring *r,
                                             struct io_uring_params *p)
{ (void)n; (void)r; (void)p; return -ENOSYS; }
static inline void io_uring_queue_exit(struct io_uring *r) { (void)r; }
static inline struct io_uring_sqe *io_uring_get_sqe(struct io_uring *r) { (void)r; return 0; }
static inline int io_uring_submit(struct io_uring *r) { (void)r; return -ENOSYS; }
static inline int io_uring_get_events(struct io_uring *r) { (void)r; return -ENOSYS; }
static inline int io_uring_peek_cqe(struct io_uring *r, struct io_uring_cqe **c)
{ (void)r; *c = 0; return -EAGAIN; }
static inline void io_uring_cqe_seen(struct io_uring *r, struct io_uring_cqe *c)
{ (void)r; (void)c; }
static inline void io_uring_prep_poll_multishot(struct io_uring_sqe *s, int fd, unsigned m)
{ (void)s; (void)fd; (void)m; }
static inline void io_uring_sqe_set_data64(struct io_uring_sqe *s, uint64_t d)
{ (void)s; (void)d; }
static inline uint64_t io_uring_cqe_get_data64(const struct io_uring_cqe *c)
{ (void)c; return 0; }
#endif
#endif
