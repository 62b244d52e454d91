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

/* Compaction journal (NAME.compact beside the folder's index, owned by the user): the
 * plan of an in-place compaction and where it is, so that the next lock of the mbox,
 * by any process of ours, finishes a compaction that was killed half way (mbox.c,
 * "Compaction").  Little-endian:
 *   "PSTCMP1\n", dev, ino, size (u64 each), nonce (16 bytes), ndel (u64),
 *   ndel x (start, end) (u64 each: the deleted byte ranges, ascending, disjoint),
 *   hash (16: SHA-256 of everything before it, first 16 bytes),
 *   the slot: phase, r, w, n (u64 each), chunk (16), hash (16: of the slot's 48 bytes).
 * Phase 1: n bytes are being copied from r down to w, chunk = hash of them.  Phase 2:
 * every kept byte is below w; a marker of n bytes (NUL, then the nonce) is at w, the
 * file ends at r, and it is being cut to w. */
#define MBOX_CJ_MAGIC "PSTCMP1\n"
#define MBOX_CJ_HDR 56
#define MBOX_CJ_HASH 16
#define MBOX_CJ_SLOT 64
#define MBOX_CJ_MARK 16
struct mbox_cjournal {
	uint64_t dev, ino, size;
	unsigned char nonce[MBOX_CJ_MARK];
	size_t ndel;
	const unsigned char *ranges;   /* into the parsed buffer: ndel x 16 bytes */
	uint64_t phase, r, w, n;
	unsigned char chunk[MBOX_CJ_HASH];
	size_t slot_off;               /* where the slot is in the file */
};
/* Parse a journal (untrusted: from a file).  max_ranges bounds ndel.  0 or -1. */
int mbox_cjournal_parse(const unsigned char *buf, size_t len, size_t max_ranges,
			struct mbox_cjournal *j);
/* Range i of a parsed journal. */
void mbox_cjournal_range(const struct mbox_cjournal *j, size_t i, uint64_t *start_r,
			 uint64_t *end_r);
/* MOVE's intent (NAME.move beside the source folder's index, mbox.c "MOVE's intent"):
 *   "PSTMOV1\n", dst dev, dst ino, n, dstlen (u64 each), dst's disk name (dstlen bytes,
 *   empty for INBOX), n x (src uid, start, end (u64 each), SHA-256 of the copy's bytes
 *   [start, end) in dst (16)), ascending and disjoint, then a hash (16) of all before. */
#define MBOX_MOVE_DST_MAX (STORAGE_NAME_MAX * 2 + 2) /* a disk name: storage_int.h disk[] */
struct mbox_move_intent {
	uint64_t dev, ino;
	size_t n;
	const char *dst;               /* not NUL-terminated */
	size_t dst_len;
	const unsigned char *ents;
};
int mbox_move_intent_parse(const unsigned char *buf, size_t len, size_t max_entries,
			   struct mbox_move_intent *mi);
void mbox_move_intent_entry(const struct mbox_move_intent *mi, size_t i, uint32_t *uid_r,
			    uint64_t *start_r, uint64_t *end_r,
			    unsigned char hash_r[MBOX_CJ_HASH]);
/* Tests: called at each step of a compaction (a test kills the process there). */
extern void (*mbox_test_hook)(int step);

#endif
