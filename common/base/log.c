/* Logging to syslog (facility mail) or to a file; one key=value line per event. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "base/plimits.h"
#include "base/log.h"
#include "base/util.h"

static const char *log_ident = "postern";
static bool log_stderr;
static bool log_debug_on;
static int log_fd = -1;        /* file target */
static bool log_syslog;
static void (*log_sink)(enum log_level, const char *, void *);
static void *log_sink_ctx;

void log_set_sink(void (*sink)(enum log_level lvl, const char *line, void *ctx), void *ctx)
{
	log_sink = sink;
	log_sink_ctx = ctx;
}

void log_close(void)
{
	if (log_syslog)
		closelog();
	log_syslog = false;
	if (log_fd != -1)
		close(log_fd);
	log_fd = -1;
	log_stderr = false;
}

void log_init(const char *ident, bool to_stderr)
{
	log_ident = ident;
	log_stderr = to_stderr;
}

int log_open(const char *target, bool debug, const char **error_r)
{
	log_debug_on = debug;
	if (target == NULL || strcmp(target, "syslog") == 0) {
		/* LOG_NDELAY: connect now, so the socket survives the worker's chroot. */
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_syslog = true;
		return 0;
	}
	if (target[0] != '/') {
		*error_r = "log must be \"syslog\" or an absolute file path";
		return -1;
	}
	/* Opened by root: O_NONBLOCK so that a FIFO put there cannot hang the open (and
	 * with it every connection), O_NOFOLLOW against a planted link, and then it must be
	 * a regular file of ours that nobody else can write. */
	int fd = open(target, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
			      O_NONBLOCK | O_NOCTTY, 0640);
	if (fd == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022) != 0) {
		*error_r = "not a regular file owned by this user and writable by it alone";
		close(fd);
		return -1;
	}
	if (log_fd != -1)
		close(log_fd);
	log_fd = fd;
	log_syslog = false;
	return 0;
}

void log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];

	if (lvl == LOG_LVL_DEBUG && !log_debug_on)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap); /* a cut log line is acceptable */
	if (log_sink != NULL) {
		log_sink(lvl, msg, log_sink_ctx);
		return;
	}
	if (log_syslog)
		syslog(prio[lvl], "%s", msg);
	if (log_fd != -1) {
		char line[1200], stamp[32];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		int n = snprintf(line, sizeof(line), "%s %s[%ld]: %s\n", stamp, log_ident,
				 (long)getpid(), msg);
		if (n > 0) {
			if ((size_t)n >= sizeof(line))
				n = sizeof(line) - 1;
			/* one write() per line with O_APPEND: lines of concurrent processes
			 * never interleave */
			if (write(log_fd, line, (size_t)n) < 0) {
				/* nowhere left to report it */
			}
		}
	}
	if (log_stderr)
		fprintf(stderr, "%s: %s\n", log_ident, msg);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
}

void fatal(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

/* The length of the UTF-8 sequence at in[0..avail) if it is well formed (shortest form,
 * no surrogate, at most U+10FFFF) and its code point is fit for a log line: not a C1
 * control and not one of the invisible format characters (zero-width and bidirectional
 * marks, overrides and isolates, line and paragraph separators, BOM) that could make a
 * log line read differently from what it holds.  0 otherwise. */
static size_t log_utf8_ok(const unsigned char *in, size_t avail)
{
	size_t len;
	uint32_t cp;
	if (in[0] >= 0xc2 && in[0] <= 0xdf) {
		len = 2;
		cp = in[0] & 0x1fu;
	} else if (in[0] >= 0xe0 && in[0] <= 0xef) {
		len = 3;
		cp = in[0] & 0x0fu;
	} else if (in[0] >= 0xf0 && in[0] <= 0xf4) {
		len = 4;
		cp = in[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > avail)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((in[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (in[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	if (cp <= 0x9f || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	    (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff)
		return 0;
	return len;
}

const char *log_sanitize(const char *in, size_t len, char *out)
{
	const unsigned char *u = (const unsigned char *)in;
	size_t n = len < LOG_MAX_FIELD ? len : LOG_MAX_FIELD;
	size_t i = 0;
	while (i < n) {
		unsigned char ch = u[i];
		if (ch >= 0x80) {
			/* BOUNDS: only a sequence that ends within the first n bytes is kept */
			size_t l = log_utf8_ok(u + i, n - i);
			if (l > 0) {
				memcpy(out + i, in + i, l);
				i += l;
				continue;
			}
		}
		out[i++] = (ch < 0x20 || ch >= 0x7f || ch == '<' || ch == '>' || ch == ',' ||
			    ch == '=') ? '?' : (char)ch;
	}
	out[n] = '\0';
	return out;
}
