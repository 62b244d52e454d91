/* The daemons' session unit tests: a child process on one end of a socketpair (the
 * daemon's code), the test on the other (the client), and a small three-message Maildir.
 * Shared by tests/unit/ipop3d/test_pop3_session.c and tests/unit/imapd/test_imap_session.c.
 * Harness failures (socketpair, fork, a write to the child) exit the test with status 1. */
#ifndef POSTERN_TEST_PEER_H
#define POSTERN_TEST_PEER_H
#include <stddef.h>
#include <sys/types.h>

struct peer {
	pid_t pid;
	int fd;
	char *out;          /* everything read from the child, NUL-terminated */
	size_t len, cap;
};

/* The child's body: its end of the socketpair; the return value is its exit status. */
typedef int peer_child_fn(int fd, void *arg);

/* The file the children log to (log_open() in the child); set by the test's main(). */
extern char peer_logpath[512];

void peer_start(struct peer *p, peer_child_fn *fn, void *arg);
void peer_send(struct peer *p, const char *s);
/* Read until the output holds needle (NULL: until EOF).  0 found, -1 EOF or 10 s timeout. */
int peer_read(struct peer *p, const char *needle);
/* Close our end and return the child's exit status (128 + signal if killed). */
int peer_finish(struct peer *p);
/* Send all input, half-close, read everything (kept in p->out); the child's exit status,
 * or -1 when reading failed. */
int peer_transcript(struct peer *p, peer_child_fn *fn, void *arg, const char *input);
/* The same, the input sent one byte per write (the daemon must give the same answers). */
int peer_transcript_bytewise(struct peer *p, peer_child_fn *fn, void *arg,
			     const char *input);
void peer_free(struct peer *p);

/* Bounded append for building inputs (no strcat in this project). */
#define peer_append(buf, s) peer_append_n((buf), sizeof(buf), (s))
void peer_append_n(char *buf, size_t size, const char *s);
/* A file's first MiB, NUL-terminated (malloc'd; "" when it cannot be read). */
char *peer_read_file(const char *path);

/* Bytes of s in CRLF form (a bare LF counts two, as POP3 LIST and IMAP sizes do). */
size_t peer_crlf_len(const char *s);

/* The test Maildir: new/msg1, cur/msg2 (seen), new/msg3 (no final newline). */
extern const char peer_msg1[], peer_msg2[], peer_msg3[];
extern const char *const peer_names[3];
void peer_write_file(const char *dir, const char *name, const char *data, size_t len);
void peer_rm_rf(const char *path);
/* rm -rf maildir, then make it with the three messages. */
void peer_make_maildir(const char *maildir);
#endif
