# Declarations of liburing and the FUSE protocol's ring structures (_libfuse/uring.h, with
# stand-ins where either is missing). Declarations only: the ring is driven by _ring.pyx.
from libc.stdint cimport int32_t, uint8_t, uint16_t, uint32_t, uint64_t

cdef extern from "_libfuse/uring.h" nogil:
    enum:
        PYFUSE3_HAVE_URING
        PYFUSE3_SQE_SIZE
        FUSE_URING_IN_OUT_HEADER_SZ
        FUSE_URING_OP_IN_OUT_SZ
        FUSE_IO_URING_CMD_REGISTER
        FUSE_IO_URING_CMD_COMMIT_AND_FETCH
        ECANCELED  # <errno.h>; Cython's libc.errno lacks it
    const uint32_t PYFUSE3_OVER_IO_URING_FLAGS2
    const unsigned int IORING_SETUP_SQE128
    const unsigned int IORING_SETUP_CQSIZE
    const unsigned int IORING_SETUP_COOP_TASKRUN
    const unsigned int IORING_SETUP_TASKRUN_FLAG
    const unsigned int IORING_CQE_F_MORE
    const uint8_t IORING_OP_URING_CMD

    struct fuse_uring_ent_in_out:
        uint64_t flags
        uint64_t commit_id
        uint32_t payload_sz
    struct fuse_uring_req_header:
        char in_out[128]
        char op_in[128]
        fuse_uring_ent_in_out ring_ent_in_out
    struct fuse_uring_cmd_req:
        uint64_t flags
        uint64_t commit_id
        uint16_t qid

    struct io_uring_sqe:
        uint8_t opcode
        int32_t fd
        uint64_t addr
        uint32_t len
        uint32_t cmd_op
    struct io_uring_cqe:
        int32_t res
        uint32_t flags
    struct io_uring:
        int ring_fd
    struct io_uring_params:
        uint32_t flags
        uint32_t cq_entries

    fuse_uring_cmd_req* pyfuse3_sqe_cmd(io_uring_sqe* sqe)
    int io_uring_queue_init_params(unsigned int entries, io_uring* ring, io_uring_params* p)
    void io_uring_queue_exit(io_uring* ring)
    io_uring_sqe* io_uring_get_sqe(io_uring* ring)
    int io_uring_submit(io_uring* ring)
    int io_uring_get_events(io_uring* ring)
    bint pyfuse3_ring_taskrun(io_uring* ring)
    int io_uring_peek_cqe(io_uring* ring, io_uring_cqe** cqe)
    void io_uring_cqe_seen(io_uring* ring, io_uring_cqe* cqe)
    void io_uring_prep_poll_multishot(io_uring_sqe* sqe, int fd, unsigned int poll_mask)
    void io_uring_sqe_set_data64(io_uring_sqe* sqe, uint64_t data)
    uint64_t io_uring_cqe_get_data64(const io_uring_cqe* cqe)
