/* What spool.c and spool_queue.c share; not for other files. */
#ifndef POSTERN_SPOOL_INT_H
#define POSTERN_SPOOL_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include "spool/spool.h"

#define DEL_SUFFIX ".del"
#define ERRBUF 256

struct spool {
	int fd, tmpfd, queuefd;
	uid_t owner;
	char error[ERRBUF];
};

struct spool_msg {
	struct spool *sp;
	char id[SPOOL_ID_LEN + 1];
	int dirfd, datafd;
	struct envelope *env;
	char error[ERRBUF];
};

/* Run the test hook at point; an injected failure becomes errno and -1. */
int spool_step(int point);
/* Format "what: strerror(err)" into buf (ERRBUF bytes); the SPOOL_* result for err. */
int spool_sys_fail(char *buf, const char **error_r, const char *what, int err);
/* Format "what: detail" into buf; returns result. */
int spool_fail_text(char *buf, const char **error_r, int result, const char *what,
		    const char *detail);
void spool_close_fd(int *fd);
/* NULL if fd is a directory of owner (with strict: no group/other access), else why not. */
const char *spool_dir_check(int fd, uid_t owner, bool strict);
/* NULL if st is a regular file of owner with one link, else why not. */
const char *spool_file_check(const struct stat *st, uid_t owner);
/* A directory entry of dfd, never through a symbolic link. */
int spool_open_dir(int dfd, const char *name);
/* Write a whole small file (an envelope) at dfd/name, created exclusively, owned by the
 * spool's owner, fdatasync'd; its mtime set to mtime if nonzero.  A SPOOL_* result. */
int spool_write_file(struct spool *sp, int dfd, const char *name, const char *text,
		     size_t len, int64_t mtime, int hook_write, int hook_sync, char *errbuf,
		     const char **error_r);
struct spool_msg *spool_msg_alloc(struct spool *sp, const char *id);

#endif
