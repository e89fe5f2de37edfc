/* The ceiling of this machine for bench/getattr_syscalls.py: the same one-file file system with
 * zero cache timeouts, on libfuse's low-level API, single-threaded fuse_session_loop().
 * Build: gcc -O2 -o zerocache_ll zerocache_ll.c $(pkg-config --cflags --libs fuse3)
 * Run:   ./zerocache_ll MOUNTPOINT   (SIGTERM/SIGINT unmount)
 */
#define FUSE_USE_VERSION 314
#include <errno.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void fill(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = ino == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
    st->st_nlink = 1;
}

static void zc_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    (void)fi;
    fill(ino, &st);
    fuse_reply_attr(req, &st, 0.0);
}

static void zc_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    if (parent != FUSE_ROOT_ID || strcmp(name, "file") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    memset(&e, 0, sizeof(e));
    e.ino = 2;
    fill(2, &e.attr);
    fuse_reply_entry(req, &e);
}

static void zc_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fi->fh = ino;
    fuse_reply_open(req, fi);
}

static void zc_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    (void)fi;
    fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops ops = {
    .getattr = zc_getattr, .lookup = zc_lookup, .open = zc_open, .release = zc_release,
};

int main(int argc, char **argv)
{
    char *args_v[] = {argv[0], "-o", "fsname=bench-c", NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, args_v);
    struct fuse_session *se;
    int ret = 1;
    if (argc != 2) {
        fprintf(stderr, "usage: %s MOUNTPOINT\n", argv[0]);
        return 2;
    }
    se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
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
