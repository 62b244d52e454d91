/* Logging to syslog (facility mail) or to a file; one key=value line per event. */
#include <errno.h>
#include <fcntl.h>
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

const char *log_sanitize(const char *in, size_t len, char *out)
{
	size_t n = len < LOG_MAX_FIELD ? len : LOG_MAX_FIELD;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		out[i] = (ch < 0x20 || ch >= 0x7f || ch == '<' || ch == '>' || ch == ',' ||
			  ch == '=') ? '?' : (char)ch;
	}
	out[n] = '\0';
	return out;
}
