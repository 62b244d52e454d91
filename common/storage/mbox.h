/* mbox format and splitter (private to common/storage/: mbox.c, tests and fuzz targets).
 *
 * Format (what Debian's exim, mutt and UW c-client write and read):
 * - A message starts at a line beginning "From " that is at offset 0 or follows an empty
 *   line ("\n" or "\r\n").  "From " lines inside a message are quoted ">From " by the MTA;
 *   a "From " line that does not follow an empty line is message content.
 * - The message content is everything after its From line up to the next message's From
 *   line, minus the one empty line just before that From line: that empty line is the
 *   separator, written by the MTA after every message.  At the end of the file, a final
 *   empty line is likewise the separator and not content (mutt and UW do the same), so a
 *   message's bytes are the same whether or not more mail follows it.
 * - A file that does not start with "From " is not an mbox; an empty file is an empty
 *   mailbox. */
#ifndef POSTERN_MBOX_H
#define POSTERN_MBOX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "base/plimits.h"

/* Bytes of SHA-256 kept as a message's identity (32 hex digits of UIDL). */
#define MBOX_DIGEST_LEN 16

/* One message found by the parser.  digest: SHA-256 of the From line and the header
 * block (through the first empty line, or to the end of the data), first 16 bytes. */
struct mbox_msginfo {
	uint64_t from_off;   /* offset of the "From " line */
	uint64_t body_off;   /* first byte after the From line */
	uint64_t raw_len;    /* content bytes (separator excluded) */
	uint64_t size;       /* content in CRLF form */
	unsigned char digest[MBOX_DIGEST_LEN];
};

/* The streaming splitter: no I/O, any chunking of the input gives the same result. */
struct mbox_parser;
/* start_off: file offset of the first byte fed.  max_messages: stop before the message
 * past this many (its From line offset becomes the end).  header_only: stop as soon as
 * the first message's digest is known (reads use it to re-check a message). */
struct mbox_parser *mbox_parser_new(uint64_t start_off, size_t max_messages,
				    bool header_only);
/* 0 feed more, 1 stopped (limit reached: further input is ignored), -1 not an mbox. */
int mbox_parser_feed(struct mbox_parser *p, const void *buf, size_t len);
/* End of input.  0, or -1 not an mbox. */
int mbox_parser_finish(struct mbox_parser *p);
const struct mbox_msginfo *mbox_parser_msgs(const struct mbox_parser *p, size_t *count_r);
/* Offset after the last indexed message's region (its separator included). */
uint64_t mbox_parser_end(const struct mbox_parser *p);
void mbox_parser_free(struct mbox_parser **p);

struct mbox_opts {
	size_t max_messages;      /* MSTORE_MAX_MESSAGES */
	int dotlock_retries;      /* lockfile_create() retries: MBOX_DOTLOCK_RETRIES */
	unsigned lock_timeout_ms; /* how long to wait for the fcntl lock */
};
void mbox_opts_default(struct mbox_opts *o);
/* Tests: shorter waits than the defaults (0: the default). */
extern int mbox_test_dotlock_retries;
extern unsigned mbox_test_lock_timeout_ms;

#endif
