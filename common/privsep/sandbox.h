/* The pre-login worker's confinement beyond the chroot and the unprivileged user
 * (priv.c): its own PID, network and IPC namespaces where the kernel allows them, only
 * the descriptors it needs, resource limits, not dumpable, and a seccomp allow-list of
 * system calls (docs/architecture.md lists what the worker may still do).
 *
 * The steps, in the order worker.c calls them:
 *   sandbox_fork()    monitor, root: the worker in a PID namespace of its own
 *   sandbox_enter()   worker, root, before the chroot: descriptors, net and IPC
 *                     namespaces, OpenSSL primed so that it never needs a file again
 *   (priv_drop_unpriv(): chroot, unprivileged user, no new privileges)
 *   sandbox_lock()    worker, unprivileged: rlimits, not dumpable, the seccomp filter;
 *                     the last step before the first network byte is parsed
 * A feature the kernel or the container refuses is skipped, and recorded with the errno
 * in struct sandbox, for the log line (sandbox_describe()) and for `-t`
 * (sandbox_probe()). */
#ifndef POSTERN_SANDBOX_H
#define POSTERN_SANDBOX_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum sandbox_feature {
	SANDBOX_PIDNS,      /* clone(CLONE_NEWPID): the worker sees no other process */
	SANDBOX_NETNS,      /* unshare(CLONE_NEWNET): no interface, no abstract socket */
	SANDBOX_IPCNS,      /* unshare(CLONE_NEWIPC): no SysV IPC or POSIX queue of the host */
	SANDBOX_SECCOMP,    /* the system-call allow-list */
	SANDBOX_FEATURES
};

/* The descriptors the worker keeps after sandbox_enter(): 0 and 1 the client (as the
 * launcher gave them), these two, and under the sanitizers fd 2 for their reports. */
#define SANDBOX_FD_CTL 3
#define SANDBOX_FD_DATA 4

struct sandbox {
	/* 0: in force; > 0: the errno the kernel (or the container) refused it with;
	 * -1: not tried (yet). */
	int err[SANDBOX_FEATURES];
	/* sandbox_probe(): the filter could not be built or loaded for another reason than
	 * a refusal (err[SANDBOX_SECCOMP] holds the errno): a worker would not run. */
	bool broken;
};

void sandbox_init(struct sandbox *sb);
/* Monitor (root): fork() the worker into a new PID namespace where the kernel allows,
 * else a plain fork() (sb records why).  Returns like fork(). */
pid_t sandbox_fork(struct sandbox *sb);
/* Worker, still root, before the chroot: keep only fds 0, 1 and the two sockets, which
 * move to SANDBOX_FD_CTL and SANDBOX_FD_DATA (*ctl_fd, *data_fd are updated); new net and
 * IPC namespaces where allowed; prime OpenSSL.  0, or -1 with *error_r. */
int sandbox_enter(struct sandbox *sb, int *ctl_fd, int *data_fd, const char **error_r);
/* Worker, after priv_drop_unpriv(): RLIMIT_AS, RLIMIT_NOFILE, RLIMIT_FSIZE, RLIMIT_CORE,
 * RLIMIT_NPROC, PR_SET_DUMPABLE 0, then the seccomp filter.  0, or -1 with *error_r (the
 * worker must not go on). */
int sandbox_lock(struct sandbox *sb, const char **error_r);
/* Load the seccomp filter alone (sandbox_lock() does it last; unit tests use it).
 * 0; 1 if the kernel refused it (sb->err says why); -1 with *error_r. */
int sandbox_filter_load(struct sandbox *sb, const char **error_r);
/* true if every feature is in force. */
bool sandbox_complete(const struct sandbox *sb);
/* "pidns=yes, netns=unavailable (EPERM), ipcns=yes, seccomp=yes" into buf. */
const char *sandbox_describe(const struct sandbox *sb, char *buf, size_t size);
/* -t: try every feature in a throwaway child process, as the worker would. */
void sandbox_probe(struct sandbox *sb);

#endif
