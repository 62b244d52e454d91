/* Logging: syslog (facility mail) or a file, one `event: key=value, ...` line per event.
 * Never stderr under inetd: fd 2 may be the client's socket. */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* ident: "ipop3d".  Before log_open() lines go to stderr only if to_stderr (used by -t).  */
void log_init(const char *ident, bool to_stderr);
/* target: "syslog" or an absolute file path.  Opens now (before chroot).  A file must be
 * a regular file (not a FIFO, a device or a symlink) owned by the caller and writable by
 * nobody else; it is opened without blocking.  0 or -1. */
int log_open(const char *target, bool debug, const char **error_r);
/* Send every line to sink instead of syslog or the file: the worker holds no log
 * descriptor and logs through the monitor.  NULL: back to the target. */
void log_set_sink(void (*sink)(enum log_level lvl, const char *line, void *ctx), void *ctx);
/* Close the syslog socket and the log file (a process that logs through a sink keeps
 * neither).  Lines after this go to the sink, or nowhere. */
void log_close(void);
/* Remember the role of this process, shown as part of nothing but used for debug. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level lvl, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
/* Log at ERR and exit(1). Startup and impossible states only. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Client-supplied text for a log field: control bytes, '<', '>', ',', '=' and every byte
 * that is not part of well-formed, visible UTF-8 (C1 controls and invisible format or
 * bidirectional characters are not) become '?', cut at LOG_MAX_FIELD bytes (a sequence
 * cut there becomes '?' too).  The output has the input's length.  out must hold
 * LOG_MAX_FIELD + 1 bytes. */
const char *log_sanitize(const char *in, size_t len, char *out);

#endif
