/* The worker's sandbox: namespaces, descriptors, rlimits, not dumpable, seccomp.
 * sandbox_fork() and sandbox_enter() run as root (server.c's list of root files names
 * this file); sandbox_lock() runs as the unprivileged user.
 *
 * What a worker may do once sandbox_lock() returned (docs/architecture.md):
 *   - read, write, send and receive on the descriptors it holds (0 and 1 the client,
 *     SANDBOX_FD_CTL and SANDBOX_FD_DATA to the monitor; no other exists and no new one
 *     can be made: socket(), pipe(), dup(), sendmsg() are not allowed, open() fails, and
 *     RLIMIT_NOFILE ends at the highest kept descriptor)
 *   - poll, shutdown, getsockopt on them; fcntl F_GETFL/F_SETFL/F_GETFD/F_SETFD only
 *   - memory: brk, mmap and mprotect without PROT_EXEC, munmap, mremap, madvise, below
 *     RLIMIT_AS
 *   - clocks, sleeping, getrandom, futex, getpid/gettid, fstat of its descriptors
 *   - signals to itself only (abort()), its own signal handlers and masks, exit
 * open() and openat() return EACCES, sysinfo() EPERM: libraries try them on rare paths
 * (glibc's qsort asks for the memory size, OpenSSL falls back to /dev/urandom) and cope
 * with a refusal; the chroot is empty anyway.  Any other system call -- socket, connect,
 * kill, ptrace, execve, clone, unshare, ... -- kills the whole worker at once
 * (SECCOMP_RET_KILL_PROCESS): code that makes one is an attacker or a bug, and neither
 * should get the chance to try another.  The monitor logs such a death
 * (`sandbox-violation`), and the kernel's audit log names the system call.
 *
 * Sanitizer builds (tests only) differ: unlisted calls return EPERM instead of killing,
 * so that the runtime's reporting degrades gracefully (it tries to start a symbolizer,
 * read /proc/self/maps, install an alternate signal stack); sigaltstack, readlink,
 * readlinkat, prctl and sched_yield are allowed; fd 2 stays open for the reports; no
 * RLIMIT_AS (ASan's shadow memory reserves terabytes of address space).  socket, connect,
 * bind, listen, accept, kill, tkill, tgkill of another process, ptrace, execve and the
 * process_vm calls still kill the worker. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include "base/plimits.h"
#include "base/util.h"
#include "privsep/sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

static const char *const sandbox_names[SANDBOX_FEATURES] = {
	[SANDBOX_PIDNS] = "pidns",
	[SANDBOX_NETNS] = "netns",
	[SANDBOX_IPCNS] = "ipcns",
	[SANDBOX_SECCOMP] = "seccomp",
};

void sandbox_init(struct sandbox *sb)
{
	for (size_t i = 0; i < SANDBOX_FEATURES; i++)
		sb->err[i] = -1;
	sb->broken = false;
}

/* The worker alone gets the new PID namespace: clone() with CLONE_NEWPID, not
 * unshare(CLONE_NEWPID) in the monitor, which would put every later child of the monitor
 * (a PAM module's helper) into the worker's namespace, and fail with ENOMEM once the
 * worker, its init, is gone.  The child is an ordinary child of the monitor: waitpid()
 * and SIGCHLD are unchanged.  The raw system call has fork() semantics (a copy of the
 * stack, no new one); glibc's fork() would also run atfork handlers, which nothing in
 * this single-threaded process needs, and getpid() is not cached by glibc >= 2.25. */
pid_t sandbox_fork(struct sandbox *sb)
{
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWPID | SIGCHLD), 0UL, 0UL, 0UL,
			   0UL);

	if (pid != -1) {
		sb->err[SANDBOX_PIDNS] = 0;
		return (pid_t)pid;
	}
	sb->err[SANDBOX_PIDNS] = errno;
	return fork();
}

/* As init of its PID namespace the worker would ignore every signal it has no handler
 * for, also the launcher's SIGTERM at shutdown (only SIGKILL and SIGSTOP from outside
 * are forced): give the usual ones their usual effect. */
static void sandbox_on_signal(int sig)
{
	_exit(128 + sig);
}

static void sandbox_init_signals(void)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sandbox_on_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		(void)sigaction(sigs[i], &sa, NULL);
}

/* Keep 0, 1 and the two sockets (moved to SANDBOX_FD_CTL, SANDBOX_FD_DATA); under the
 * sanitizers fd 2 too.  Everything else the launcher or a library left open goes. */
static int sandbox_fds(int *ctl_fd, int *data_fd, const char **error_r)
{
	int c = fcntl(*ctl_fd, F_DUPFD, SANDBOX_FD_DATA + 1);
	int d = fcntl(*data_fd, F_DUPFD, SANDBOX_FD_DATA + 1);

	if (c == -1 || d == -1 || dup2(c, SANDBOX_FD_CTL) == -1 ||
	    dup2(d, SANDBOX_FD_DATA) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	if (close_range(SANDBOX_FD_DATA + 1, ~0U, 0) == -1) {
		/* kernels before 5.9: every descriptor up to the limit, one by one */
		struct rlimit rl;
		int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ?
			  (int)rl.rlim_cur : 65536;
		for (int fd = SANDBOX_FD_DATA + 1; fd < max; fd++)
			(void)close(fd);
	}
#ifndef SANDBOX_SANITIZER
	(void)close(2);       /* /dev/null by now (server.c): nothing to keep */
#endif
	*ctl_fd = SANDBOX_FD_CTL;
	*data_fd = SANDBOX_FD_DATA;
	return 0;
}

static void sandbox_unshare(struct sandbox *sb)
{
	sb->err[SANDBOX_NETNS] = unshare(CLONE_NEWNET) == 0 ? 0 : errno;
	sb->err[SANDBOX_IPCNS] = unshare(CLONE_NEWIPC) == 0 ? 0 : errno;
}

int sandbox_enter(struct sandbox *sb, int *ctl_fd, int *data_fd, const char **error_r)
{
	unsigned char seed[16];

	/* OpenSSL, while files can still be opened: error strings, the configuration, and
	 * the random generator, which reseeds after the fork (getrandom()) on first use. */
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
			     NULL) != 1 ||
	    RAND_bytes(seed, sizeof(seed)) != 1) {
		*error_r = "OpenSSL initialization failed";
		return -1;
	}
	OPENSSL_cleanse(seed, sizeof(seed));
	if (sandbox_fds(ctl_fd, data_fd, error_r) == -1)
		return -1;
	sandbox_unshare(sb);
	if (sb->err[SANDBOX_PIDNS] == 0)
		sandbox_init_signals();
	return 0;
}

int sandbox_lock(struct sandbox *sb, const char **error_r)
{
	static const struct { int res; rlim_t max; } limits[] = {
#ifndef SANDBOX_SANITIZER
		{ RLIMIT_AS, WORKER_MAX_AS },
#endif
		{ RLIMIT_NOFILE, SANDBOX_FD_DATA + 1 },  /* nothing above the highest it keeps */
		{ RLIMIT_FSIZE, 0 },                     /* it writes no file */
		{ RLIMIT_CORE, 0 },                      /* a core file would hold the TLS key */
		{ RLIMIT_NPROC, 0 },                     /* it never forks */
	};

	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		struct rlimit rl = { limits[i].max, limits[i].max };
		if (setrlimit(limits[i].res, &rl) == -1) {
			*error_r = strerror(errno);
			return -1;
		}
	}
	/* No ptrace, no core, /proc/PID owned by root: not even another process of the
	 * same user can read the worker's memory (the TLS key, a password). */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1) {
		*error_r = strerror(errno);
		return -1;
	}
	return sandbox_filter_load(sb, error_r) == -1 ? -1 : 0;
}

/* Allowed with any arguments. */
static const int sandbox_allow[] = {
	SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto),
	SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(shutdown), SCMP_SYS(getsockopt),
	SCMP_SYS(close), SCMP_SYS(fstat),
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	SCMP_SYS(getrandom), SCMP_SYS(futex),
	SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday), SCMP_SYS(time),
	SCMP_SYS(nanosleep), SCMP_SYS(clock_nanosleep),
	SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
	SCMP_SYS(restart_syscall),      /* a poll() interrupted by a stop (ptrace, SIGSTOP) */
	SCMP_SYS(exit), SCMP_SYS(exit_group),
#ifdef SANDBOX_SANITIZER
	SCMP_SYS(sigaltstack), SCMP_SYS(readlink), SCMP_SYS(readlinkat), SCMP_SYS(prctl),
	SCMP_SYS(sched_yield),
#endif
};

/* Refused with an error that the libraries that try them handle. */
static const struct { int nr; int err; } sandbox_refuse[] = {
	{ SCMP_SYS(open), EACCES }, { SCMP_SYS(openat), EACCES },
	{ SCMP_SYS(openat2), EACCES }, { SCMP_SYS(creat), EACCES },
	{ SCMP_SYS(sysinfo), EPERM },
};

#ifdef SANDBOX_SANITIZER
/* Killed also where the default is EPERM: the calls of the attacks this sandbox is for. */
static const int sandbox_forbid[] = {
	SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect), SCMP_SYS(bind),
	SCMP_SYS(listen), SCMP_SYS(accept), SCMP_SYS(accept4), SCMP_SYS(kill), SCMP_SYS(tkill),
	SCMP_SYS(rt_sigqueueinfo), SCMP_SYS(rt_tgsigqueueinfo), SCMP_SYS(pidfd_send_signal),
	SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
	SCMP_SYS(execve), SCMP_SYS(execveat),
};
#endif

/* SECCOMP_RET_KILL_PROCESS needs Linux >= 4.14, and libseccomp sees it only where the
 * seccomp() system call is allowed (API level 3); else SECCOMP_RET_KILL_THREAD, the same
 * for the single-threaded worker. */
static uint32_t sandbox_kill(void)
{
	return seccomp_api_get() >= 3 ? SCMP_ACT_KILL_PROCESS : SCMP_ACT_KILL_THREAD;
}

static uint32_t sandbox_default(void)
{
#ifdef SANDBOX_SANITIZER
	return SCMP_ACT_ERRNO(EPERM);
#else
	return sandbox_kill();
#endif
}

/* A rule for a system call this architecture does not have (a negative pseudo number,
 * e.g. open on arm64) is no error. */
static int sandbox_rule(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned n,
			const struct scmp_arg_cmp *cmp)
{
	if (action == sandbox_default())
		return 0;               /* libseccomp refuses a rule that repeats the default */
	int rc = seccomp_rule_add_array(ctx, action, nr, n, cmp);
	return rc < 0 && nr < 0 ? 0 : rc;
}

static int sandbox_rules(scmp_filter_ctx ctx, pid_t self)
{
	static const int fcntl_ok[] = { F_GETFL, F_SETFL, F_GETFD, F_SETFD };
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(sandbox_allow) / sizeof(sandbox_allow[0]); i++)
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, sandbox_allow[i], 0, NULL);
	for (size_t i = 0; rc == 0 && i < sizeof(sandbox_refuse) / sizeof(sandbox_refuse[0]);
	     i++)
		rc = sandbox_rule(ctx, SCMP_ACT_ERRNO((uint32_t)sandbox_refuse[i].err),
				  sandbox_refuse[i].nr, 0, NULL);
	for (size_t i = 0; rc == 0 && i < sizeof(fcntl_ok) / sizeof(fcntl_ok[0]); i++) {
		struct scmp_arg_cmp c = SCMP_A1(SCMP_CMP_EQ, (scmp_datum_t)fcntl_ok[i]);
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(fcntl), 1, &c);
	}
	/* No executable memory: code that got in cannot map more of itself. */
	struct scmp_arg_cmp noexec = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	if (rc == 0)
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, &noexec);
	if (rc == 0)
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1, &noexec);
	/* fstat() is newfstatat(fd, "", AT_EMPTY_PATH) in glibc >= 2.33: on a descriptor. */
	struct scmp_arg_cmp empty = SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH);
	if (rc == 0)
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1, &empty);
	/* raise() and abort(): tgkill(getpid(), gettid(), sig), to itself only. */
	struct scmp_arg_cmp me = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)self);
	if (rc == 0)
		rc = sandbox_rule(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &me);
#ifdef SANDBOX_SANITIZER
	struct scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)self);
	if (rc == 0)
		rc = sandbox_rule(ctx, sandbox_kill(), SCMP_SYS(tgkill), 1, &other);
	for (size_t i = 0; rc == 0 && i < sizeof(sandbox_forbid) / sizeof(sandbox_forbid[0]);
	     i++)
		rc = sandbox_rule(ctx, sandbox_kill(), sandbox_forbid[i], 0, NULL);
#endif
	return rc;
}

int sandbox_filter_load(struct sandbox *sb, const char **error_r)
{
	/* A kernel without CONFIG_SECCOMP answers EINVAL. */
	if (prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == -1) {
		sb->err[SANDBOX_SECCOMP] = errno;
		return 1;
	}
	scmp_filter_ctx ctx = seccomp_init(sandbox_default());
	if (ctx == NULL) {
		*error_r = "seccomp_init failed";
		return -1;
	}
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, sandbox_kill());
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_API_SYSRAWRC, 1);
	if (rc == 0)
		rc = sandbox_rules(ctx, getpid());
	if (rc < 0) {
		seccomp_release(ctx);
		*error_r = strerror(-rc);
		return -1;
	}
	rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc == -EINVAL || rc == -ENOSYS || rc == -EPERM) {
		/* a kernel without filter mode, or a container whose own filter refuses */
		sb->err[SANDBOX_SECCOMP] = -rc;
		return 1;
	}
	if (rc < 0) {
		*error_r = strerror(-rc);
		return -1;
	}
	sb->err[SANDBOX_SECCOMP] = 0;
	return 0;
}

bool sandbox_complete(const struct sandbox *sb)
{
	for (size_t i = 0; i < SANDBOX_FEATURES; i++)
		if (sb->err[i] != 0)
			return false;
	return true;
}

const char *sandbox_describe(const struct sandbox *sb, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < SANDBOX_FEATURES; i++) {
		char state[64];
		const char *name = sb->err[i] > 0 ? strerrorname_np(sb->err[i]) : NULL;
		if (sb->err[i] == 0)
			util_snprintf(state, sizeof(state), "yes");
		else if (sb->err[i] < 0)
			util_snprintf(state, sizeof(state), "not-tried");
		else if (name != NULL)
			util_snprintf(state, sizeof(state), "unavailable (%s)", name);
		else
			util_snprintf(state, sizeof(state), "unavailable (errno %d)", sb->err[i]);
		int n = snprintf(buf + off, size - off, "%s%s=%s", i == 0 ? "" : ", ",
				 sandbox_names[i], state);
		if (n < 0 || (size_t)n >= size - off) {
			buf[off] = '\0';     /* cut after the last whole item */
			break;
		}
		off += (size_t)n;       /* BOUNDS: n < size - off, checked above */
	}
	return buf;
}

void sandbox_probe(struct sandbox *sb)
{
	int p[2];

	sandbox_init(sb);
	if (pipe(p) == -1) {
		for (size_t i = 0; i < SANDBOX_FEATURES; i++)
			sb->err[i] = errno;
		sb->broken = true;
		return;
	}
	pid_t pid = sandbox_fork(sb);
	if (pid == 0) {
		const char *err;
		close(p[0]);
		sandbox_unshare(sb);
		errno = 0;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    sandbox_filter_load(sb, &err) == -1) {
			sb->err[SANDBOX_SECCOMP] = errno != 0 ? errno : EINVAL;
			sb->broken = true;
		}
		ssize_t w = write(p[1], sb, sizeof(*sb));
		_exit(w == (ssize_t)sizeof(*sb) ? 0 : 1);
	}
	close(p[1]);
	int e = pid == -1 ? errno : 0;
	struct sandbox got;
	ssize_t n = -1;
	if (pid != -1) {
		while ((n = read(p[0], &got, sizeof(got))) == -1 && errno == EINTR)
			;
		while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
			;
	}
	close(p[0]);
	if (n == (ssize_t)sizeof(got)) {
		*sb = got;
		return;
	}
	for (size_t i = 0; i < SANDBOX_FEATURES; i++)
		sb->err[i] = e != 0 ? e : EIO;
	sb->broken = true;
}
