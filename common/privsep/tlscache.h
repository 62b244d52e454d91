/* The monitor's store of resumable TLS 1.3 sessions, shared by every per-connection
 * process: one file of fixed slots (state_dir/tls-sessions), no lock.  A session is
 * taken out once (single use) and expires.  Root only: the worker asks the monitor. */
#ifndef POSTERN_TLSCACHE_H
#define POSTERN_TLSCACHE_H
#include <stddef.h>
#include <time.h>

#define TLSCACHE_FILE "tls-sessions"
#define TLSCACHE_ID_MAX 32

/* Keep data under id until now + lifetime.  An unexpired session with the same id is
 * not replaced (a worker cannot overwrite another connection's session); another id in
 * the same slot is.  0, or -1 with *error_r. */
int tlscache_put(const char *path, const unsigned char *id, size_t idlen,
		 const unsigned char *data, size_t len, time_t now, unsigned lifetime,
		 const char **error_r);
/* Take the session kept under id out of the file (its slot is cleared).  1 found, its
 * bytes in out and *len_r; 0 none (or expired, or damaged); -1 error with *error_r. */
int tlscache_take(const char *path, const unsigned char *id, size_t idlen, time_t now,
		  unsigned lifetime, unsigned char *out, size_t size, size_t *len_r,
		  const char **error_r);

#endif
