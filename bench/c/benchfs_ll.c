/* bench/benchfs.py in C on libfuse's low-level API, single-threaded fuse_session_loop():
 * the ceiling of this machine for the benchmark workloads. Same inodes, sizes and contents.
 * Build: gcc -O2 -o benchfs_ll benchfs_ll.c $(pkg-config --cflags --libs fuse3)
 * Run:   ./benchfs_ll MOUNTPOINT [OPTIONS]   (SIGTERM/SIGINT unmount; OPTIONS: more -o options
 *        for libfuse, e.g. io_uring with libfuse 3.18: requests then arrive through the rings,
 *        served by libfuse's threads, one per CPU)
 * BENCHFS_HOP=1 in the environment: every request is handed from the thread libfuse calls to
 *        one "event loop" thread (a queue and an eventfd it waits for in epoll), which runs the
 *        handler and answers: the floor of serving libfuse's io_uring threads from an event
 *        loop (docs/design.md, design 1).
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define ROOT 1
#define LARGE 2
#define RW 3
#define FIRST_SMALL 100
#define N_SMALL 10000
#define SMALL_SIZE 4096
#define LARGE_SIZE (512LL << 20)
#define PERIOD (1 << 20)
#define FIRST_RW 1000000
#define MAX_RW 4096

static unsigned char pattern[2 * PERIOD];
static unsigned char small[SMALL_SIZE];
static char rw_names[MAX_RW][256];
static off_t rw_sizes[MAX_RW];
static int rw_used[MAX_RW];

static int attr_of(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_nlink = 1;
    if (ino == ROOT || ino == RW) {
        st->st_mode = S_IFDIR | 0777;
        st->st_nlink = 2;
    } else if (ino == LARGE) {
        st->st_mode = S_IFREG | 0644;
        st->st_size = LARGE_SIZE;
    } else if (ino >= FIRST_SMALL && ino < FIRST_SMALL + N_SMALL) {
        st->st_mode = S_IFREG | 0644;
        st->st_size = SMALL_SIZE;
    } else if (ino >= FIRST_RW && ino < FIRST_RW + MAX_RW && rw_used[ino - FIRST_RW]) {
        st->st_mode = S_IFREG | 0644;
        st->st_size = rw_sizes[ino - FIRST_RW];
    } else {
        return ENOENT;
    }
    return 0;
}

static void reply_entry(fuse_req_t req, fuse_ino_t ino)
{
    struct fuse_entry_param e;
    memset(&e, 0, sizeof(e));
    e.ino = ino;
    if (attr_of(ino, &e.attr) != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fuse_reply_entry(req, &e);
}

static void bf_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    (void)fi;
    if (attr_of(ino, &st) != 0)
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_attr(req, &st, 0.0);
}

static int rw_find(const char *name)
{
    for (int i = 0; i < MAX_RW; i++)
        if (rw_used[i] && strcmp(rw_names[i], name) == 0)
            return i;
    return -1;
}

static void bf_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    if (parent == ROOT) {
        if (strcmp(name, "large") == 0)
            return reply_entry(req, LARGE);
        if (strcmp(name, "rw") == 0)
            return reply_entry(req, RW);
        if (name[0] == 'f' && strlen(name) == 6) {
            char *end;
            long i = strtol(name + 1, &end, 10);
            if (*end == '\0' && i >= 0 && i < N_SMALL)
                return reply_entry(req, FIRST_SMALL + i);
        }
    } else if (parent == RW) {
        int i = rw_find(name);
        if (i >= 0)
            return reply_entry(req, FIRST_RW + i);
    }
    fuse_reply_err(req, ENOENT);
}

static void bf_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    char *buf = calloc(1, size);
    size_t used = 0;
    (void)fi;
    if (ino == ROOT && buf) {
        for (off_t i = off; i < N_SMALL + 2; i++) {
            struct fuse_entry_param e;
            char name[16];
            fuse_ino_t child = i == 0 ? LARGE : i == 1 ? RW : FIRST_SMALL + (i - 2);
            if (i == 0)
                strcpy(name, "large");
            else if (i == 1)
                strcpy(name, "rw");
            else
                snprintf(name, sizeof(name), "f%05d", (int)(i - 2));
            memset(&e, 0, sizeof(e));
            e.ino = child;
            attr_of(child, &e.attr);
            size_t n = fuse_add_direntry_plus(req, buf + used, size - used, name, &e, i + 1);
            if (n > size - used)
                break;
            used += n;
        }
    }
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void bf_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fi->fh = ino;
    fi->keep_cache = 0;
    fuse_reply_open(req, fi);
}

static void bf_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)fi;
    if (ino == LARGE) {
        if (off >= LARGE_SIZE)
            size = 0;
        else if ((off_t)size > LARGE_SIZE - off)
            size = LARGE_SIZE - off;
        fuse_reply_buf(req, (const char *)pattern + off % PERIOD, size);
    } else {
        if (off >= SMALL_SIZE)
            size = 0;
        else if ((off_t)size > SMALL_SIZE - off)
            size = SMALL_SIZE - off;
        fuse_reply_buf(req, (const char *)small + off, size);
    }
}

static void bf_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)mode;
    if (parent != RW) {
        fuse_reply_err(req, EACCES);
        return;
    }
    for (int i = 0; i < MAX_RW; i++) {
        if (!rw_used[i]) {
            struct fuse_entry_param e;
            rw_used[i] = 1;
            rw_sizes[i] = 0;
            snprintf(rw_names[i], sizeof(rw_names[i]), "%s", name);
            memset(&e, 0, sizeof(e));
            e.ino = FIRST_RW + i;
            attr_of(e.ino, &e.attr);
            fi->fh = e.ino;
            fi->keep_cache = 0;
            fuse_reply_create(req, &e, fi);
            return;
        }
    }
    fuse_reply_err(req, ENOSPC);
}

static void bf_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)buf;
    (void)fi;
    if (ino >= FIRST_RW && ino < FIRST_RW + MAX_RW && rw_sizes[ino - FIRST_RW] < off + (off_t)size)
        rw_sizes[ino - FIRST_RW] = off + size;
    fuse_reply_write(req, size);
}

static void bf_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    int i = parent == RW ? rw_find(name) : -1;
    if (i < 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    rw_used[i] = 0;
    fuse_reply_err(req, 0);
}

static void bf_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .lookup = bf_lookup, .getattr = bf_getattr, .readdirplus = bf_readdirplus,
    .open = bf_open, .read = bf_read, .create = bf_create, .write = bf_write,
    .unlink = bf_unlink, .flush = bf_ok, .release = bf_ok, .releasedir = bf_ok,
};

/* BENCHFS_HOP: the hand-over to the loop thread. */
enum { J_LOOKUP, J_GETATTR, J_READDIRPLUS, J_OPEN, J_READ, J_CREATE, J_WRITE, J_UNLINK, J_OK };
struct job {
    struct job *next;
    int kind, has_fi;
    fuse_req_t req;
    fuse_ino_t ino;
    const char *name; /* in the request's buffer, valid until the answer */
    size_t size;
    off_t off;
    mode_t mode;
    struct fuse_file_info fi;
};
static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *jobs_head, **jobs_tail = &jobs_head;
static int hop_fd = -1;

static void hop(int kind, fuse_req_t req, fuse_ino_t ino, const char *name, size_t size,
                off_t off, mode_t mode, struct fuse_file_info *fi)
{
    struct job *j = calloc(1, sizeof(*j));
    uint64_t one = 1;
    j->kind = kind, j->req = req, j->ino = ino, j->name = name, j->size = size, j->off = off;
    j->mode = mode;
    if (fi) {
        j->fi = *fi;
        j->has_fi = 1;
    }
    pthread_mutex_lock(&jobs_lock);
    *jobs_tail = j;
    jobs_tail = &j->next;
    pthread_mutex_unlock(&jobs_lock);
    if (write(hop_fd, &one, sizeof(one)) != sizeof(one))
        abort();
}

static void h_lookup(fuse_req_t r, fuse_ino_t p, const char *n)
{ hop(J_LOOKUP, r, p, n, 0, 0, 0, NULL); }
static void h_getattr(fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi)
{ hop(J_GETATTR, r, i, NULL, 0, 0, 0, fi); }
static void h_readdirplus(fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi)
{ hop(J_READDIRPLUS, r, i, NULL, s, o, 0, fi); }
static void h_open(fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi)
{ hop(J_OPEN, r, i, NULL, 0, 0, 0, fi); }
static void h_read(fuse_req_t r, fuse_ino_t i, size_t s, off_t o, struct fuse_file_info *fi)
{ hop(J_READ, r, i, NULL, s, o, 0, fi); }
static void h_create(fuse_req_t r, fuse_ino_t p, const char *n, mode_t m, struct fuse_file_info *fi)
{ hop(J_CREATE, r, p, n, 0, 0, m, fi); }
static void h_write(fuse_req_t r, fuse_ino_t i, const char *b, size_t s, off_t o,
                    struct fuse_file_info *fi)
{ hop(J_WRITE, r, i, b, s, o, 0, fi); }
static void h_unlink(fuse_req_t r, fuse_ino_t p, const char *n)
{ hop(J_UNLINK, r, p, n, 0, 0, 0, NULL); }
static void h_ok(fuse_req_t r, fuse_ino_t i, struct fuse_file_info *fi)
{ hop(J_OK, r, i, NULL, 0, 0, 0, fi); }

static void *loop_thread(void *arg)
{
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN}, got;
    (void)arg;
    epoll_ctl(ep, EPOLL_CTL_ADD, hop_fd, &ev);
    for (;;) {
        uint64_t n;
        struct job *j;
        if (epoll_wait(ep, &got, 1, -1) < 1 || read(hop_fd, &n, sizeof(n)) != sizeof(n))
            continue;
        pthread_mutex_lock(&jobs_lock);
        j = jobs_head;
        jobs_head = NULL;
        jobs_tail = &jobs_head;
        pthread_mutex_unlock(&jobs_lock);
        while (j) {
            struct job *next = j->next;
            struct fuse_file_info *fi = j->has_fi ? &j->fi : NULL;
            switch (j->kind) {
            case J_LOOKUP: bf_lookup(j->req, j->ino, j->name); break;
            case J_GETATTR: bf_getattr(j->req, j->ino, fi); break;
            case J_READDIRPLUS: bf_readdirplus(j->req, j->ino, j->size, j->off, fi); break;
            case J_OPEN: bf_open(j->req, j->ino, fi); break;
            case J_READ: bf_read(j->req, j->ino, j->size, j->off, fi); break;
            case J_CREATE: bf_create(j->req, j->ino, j->name, j->mode, fi); break;
            case J_WRITE: bf_write(j->req, j->ino, j->name, j->size, j->off, fi); break;
            case J_UNLINK: bf_unlink(j->req, j->ino, j->name); break;
            default: bf_ok(j->req, j->ino, fi); break;
            }
            free(j);
            j = next;
        }
    }
    return NULL;
}

static const struct fuse_lowlevel_ops hop_ops = {
    .lookup = h_lookup, .getattr = h_getattr, .readdirplus = h_readdirplus,
    .open = h_open, .read = h_read, .create = h_create, .write = h_write,
    .unlink = h_unlink, .flush = h_ok, .release = h_ok, .releasedir = h_ok,
};

int main(int argc, char **argv)
{
    char *args_v[] = {argv[0], "-o", "fsname=benchfs-c", "-o", argc == 3 ? argv[2] : "", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(argc == 3 ? 5 : 3, args_v);
    struct fuse_session *se;
    int ret = 1;
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: %s MOUNTPOINT [OPTIONS]\n", argv[0]);
        return 2;
    }
    for (int i = 0; i < 2 * PERIOD; i++)
        pattern[i] = (unsigned char)(((i % PERIOD) * 7) % 251);
    for (int i = 0; i < SMALL_SIZE; i++)
        small[i] = (unsigned char)i;
    if (getenv("BENCHFS_HOP")) {
        pthread_t loop;
        hop_fd = eventfd(0, EFD_CLOEXEC);
        pthread_create(&loop, NULL, loop_thread, NULL);
        se = fuse_session_new(&args, &hop_ops, sizeof(hop_ops), NULL);
    } else {
        se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
    }
    if (se == NULL)
        return 1;
    if (fuse_set_signal_handlers(se) == 0 && fuse_session_mount(se, argv[1]) == 0) {
        ret = fuse_session_loop(se);
        fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return ret ? 1 : 0;
}
