/* libFuzzer: the mbox files that a lock or an open reads and acts on: the compaction
 * journal (mbox_cjournal_parse(), NAME.compact) and, with bit 4 of byte 0, MOVE's
 * intent (mbox_move_intent_parse(), NAME.move).  Byte 0: bit 0 set, the target writes
 * the hashes over the rest first, so the structural checks behind them are reached;
 * bits 1-3 bound the number of ranges or entries.  Checks on success: the length is
 * exactly what the counts say, ranges are non-empty, ascending, disjoint (journal:
 * inside the recorded size; w <= r, the chunk or marker fits in r - w and its limit;
 * intent: UIDs non-zero, the folder name without NUL); a second parse gives the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include "storage/mbox.h"

static void sha16(const uint8_t *p, size_t n, uint8_t *out)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned len = 0;
	if (EVP_Digest(p, n, md, &len, EVP_sha256(), NULL) != 1)
		abort();
	memcpy(out, md, MBOX_CJ_HASH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t len = size - 1;
	uint8_t *buf = malloc(len + 1);
	memcpy(buf, data + 1, len);
	size_t max = (size_t)1 << ((data[0] >> 1) & 7);
	const size_t fixed = MBOX_CJ_HDR + MBOX_CJ_HASH + MBOX_CJ_SLOT;
	if ((data[0] & 1) && len >= fixed) {
		size_t hl = len - MBOX_CJ_HASH - MBOX_CJ_SLOT;
		sha16(buf, hl, buf + hl);
		sha16(buf + hl + MBOX_CJ_HASH, 48, buf + hl + MBOX_CJ_HASH + 48);
	}
	if (data[0] & 0x10) {
		if ((data[0] & 1) && len >= 40 + MBOX_CJ_HASH)
			sha16(buf, len - MBOX_CJ_HASH, buf + len - MBOX_CJ_HASH);
		struct mbox_move_intent mi;
		if (mbox_move_intent_parse(buf, len, max, &mi) == 0) {
			if (mi.n == 0 || mi.n > max || mi.dst_len > MBOX_MOVE_DST_MAX ||
			    len != 40 + mi.dst_len + 40 * mi.n + MBOX_CJ_HASH ||
			    memchr(mi.dst, '\0', mi.dst_len) != NULL)
				abort();
			uint64_t prev = 0;
			for (size_t i = 0; i < mi.n; i++) {
				uint32_t uid;
				uint64_t a, b;
				unsigned char h[MBOX_CJ_HASH];
				mbox_move_intent_entry(&mi, i, &uid, &a, &b, h);
				if (uid == 0 || a < prev || b <= a)
					abort();
				prev = b;
			}
		}
		free(buf);
		return 0;
	}
	struct mbox_cjournal j, j2;
	if (mbox_cjournal_parse(buf, len, max, &j) == 0) {
		if (j.ndel == 0 || j.ndel > max ||
		    len != MBOX_CJ_HDR + 16 * j.ndel + MBOX_CJ_HASH + MBOX_CJ_SLOT ||
		    j.slot_off + MBOX_CJ_SLOT != len)
			abort();
		uint64_t prev = 0, a0 = 0;
		for (size_t i = 0; i < j.ndel; i++) {
			uint64_t a, b;
			mbox_cjournal_range(&j, i, &a, &b);
			if (a < prev || b <= a || b > j.size)
				abort();
			if (i == 0)
				a0 = a;
			prev = b;
		}
		if (j.w < a0 || j.w > j.r || j.n == 0 || j.n > j.r - j.w ||
		    (j.phase == 1 && j.n > MBOX_SCAN_CHUNK) ||
		    (j.phase == 2 && j.n > MBOX_CJ_MARK) || (j.phase != 1 && j.phase != 2))
			abort();
		if (mbox_cjournal_parse(buf, len, max, &j2) != 0 || j2.r != j.r || j2.w != j.w ||
		    j2.ndel != j.ndel)
			abort();
	}
	free(buf);
	return 0;
}
