/* sandbox.c: the seccomp allow-list, tried system call by system call in a child that
 * loaded it (as the worker does after dropping privileges), and the status line.
 * The integration test tests/integ/test_sandbox.py does the same inside a live worker. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "privsep/sandbox.h"
#include "unit.h"

#if defined(__SANITIZE_ADDRESS__)
#define SAN 1
#else
#define SAN 0
#endif

/* What a probe did: returned this (>= 0 ok, or -errno), or was killed. */
#define KILLED_SIGSYS 1000
#define NOT_LOADED 1001

static pid_t parent;
static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int probe_socket(void) { return socket(AF_INET, SOCK_STREAM, 0); }
static int probe_connect(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(9) };
	sin.sin_addr.s_addr = htonl(0x7f000001);
	return connect(0, (struct sockaddr *)&sin, sizeof(sin));
}
static int probe_kill(void) { return kill(parent, 0); }
static int probe_tgkill_other(void) { return (int)syscall(SYS_tgkill, parent, parent, 0); }
static int probe_ptrace(void)
{
	return (int)syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, parent, 0, 0);
}
static int probe_execve(void)
{
	char *const argv[] = { "/bin/true", NULL };
	return execve("/bin/true", argv, NULL);
}
static int probe_open(void) { return open("/etc/passwd", O_RDONLY); }
static int probe_openat(void) { return openat(AT_FDCWD, "/etc/passwd", O_RDONLY); }
static int probe_creat_file(void)
{
	return open("/tmp/postern-sandbox-unit", O_WRONLY | O_CREAT, 0600);
}
static int probe_write(void) { return (int)write(1, "", 0); }
static int probe_getpid(void) { return getpid() > 0 ? 0 : -1; }
static int probe_fcntl_getfl(void) { return fcntl(1, F_GETFL) >= 0 ? 0 : -1; }
static int probe_fcntl_dupfd(void) { return fcntl(1, F_DUPFD, 0); }
static int probe_dup(void) { return dup(1); }
static int probe_pipe(void) { int p[2]; return pipe(p); }
static int probe_sendmsg(void)
{
	/* descriptor passing needs sendmsg(): not allowed */
	struct msghdr mh = { 0 };
	return (int)sendmsg(1, &mh, 0);
}
static int probe_mmap_rw(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -1 : munmap(p, 4096);
}
static int probe_mmap_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -1 : 0;
}
static int probe_mprotect_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? -2 : mprotect(p, 4096, PROT_READ | PROT_EXEC);
}
static int probe_malloc(void)
{
	/* large enough for mmap() rather than brk() */
	char *p = malloc(4 << 20);
	if (p == NULL)
		return -1;
	p[0] = 1;
	free(p);
	return 0;
}
static int probe_raise_self(void)
{
	signal(SIGUSR1, on_usr1);
	return raise(SIGUSR1) == 0 && got_usr1 ? 0 : -1;
}
static int probe_fork(void) { return (int)syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }
static int probe_unshare(void)
{
	return (int)syscall(SYS_unshare, 0x40000000 /* CLONE_NEWNET */);
}

/* Run probe in a child after loading the filter. */
static int run_probe(int (*probe)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		struct sandbox sb;
		const char *err;
		sandbox_init(&sb);
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1 ||
		    sandbox_filter_load(&sb, &err) != 0)
			_exit(NOT_LOADED - 1000);
		errno = 0;
		int r = probe();
		/* exit codes: 100 ok, 100 + errno on failure (errno < 100 here) */
		_exit(r >= 0 ? 100 : (errno > 0 && errno < 100 ? 100 + errno : 99));
	}
	int st;
	if (pid == -1 || waitpid(pid, &st, 0) != pid)
		return -9999;
	if (WIFSIGNALED(st))
		return WTERMSIG(st) == SIGSYS ? KILLED_SIGSYS : -10000 - WTERMSIG(st);
	int code = WEXITSTATUS(st);
	if (code == NOT_LOADED - 1000)
		return NOT_LOADED;
	return code == 100 ? 0 : -(code - 100);
}

static void test_filter(void)
{
	/* in every build: the system calls of the attacks are fatal */
	int (*const fatal[])(void) = {
		probe_socket, probe_connect, probe_kill, probe_tgkill_other, probe_ptrace,
		probe_execve,
	};
	/* in every build: allowed */
	int (*const ok[])(void) = {
		probe_write, probe_getpid, probe_fcntl_getfl, probe_mmap_rw, probe_malloc,
		probe_raise_self,
	};
	/* release: fatal; sanitizer builds: EPERM */
	int (*const other[])(void) = {
		probe_fcntl_dupfd, probe_dup, probe_pipe, probe_sendmsg, probe_mmap_exec,
		probe_mprotect_exec, probe_fork, probe_unshare,
	};

	int r = run_probe(probe_getpid);
	if (r == NOT_LOADED) {
		printf("test_sandbox: this kernel refuses seccomp filters: not proved\n");
		return;
	}
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++) {
		r = run_probe(fatal[i]);
		if (r != KILLED_SIGSYS)
			fprintf(stderr, "fatal probe %zu: %d\n", i, r);
		CHECK(r == KILLED_SIGSYS);
	}
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		r = run_probe(ok[i]);
		if (r != 0)
			fprintf(stderr, "ok probe %zu: %d\n", i, r);
		CHECK(r == 0);
	}
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++) {
		r = run_probe(other[i]);
		if (r != (SAN ? -EPERM : KILLED_SIGSYS))
			fprintf(stderr, "other probe %zu: %d\n", i, r);
		CHECK(r == (SAN ? -EPERM : KILLED_SIGSYS));
	}
	/* open is refused, not fatal: libraries fall back */
	CHECK(run_probe(probe_open) == -EACCES);
	CHECK(run_probe(probe_openat) == -EACCES);
	CHECK(run_probe(probe_creat_file) == -EACCES);
	CHECK(access("/tmp/postern-sandbox-unit", F_OK) == -1);
}

static void test_describe(void)
{
	struct sandbox sb;
	char buf[160];

	sandbox_init(&sb);
	CHECK(!sandbox_complete(&sb));
	CHECK_STR(sandbox_describe(&sb, buf, sizeof(buf)),
		  "pidns=not-tried, netns=not-tried, ipcns=not-tried, seccomp=not-tried");
	sb.err[SANDBOX_PIDNS] = 0;
	sb.err[SANDBOX_NETNS] = EPERM;
	sb.err[SANDBOX_IPCNS] = 0;
	sb.err[SANDBOX_SECCOMP] = EINVAL;
	CHECK(!sandbox_complete(&sb));
	CHECK_STR(sandbox_describe(&sb, buf, sizeof(buf)),
		  "pidns=yes, netns=unavailable (EPERM), ipcns=yes, seccomp=unavailable (EINVAL)");
	sb.err[SANDBOX_NETNS] = 0;
	sb.err[SANDBOX_SECCOMP] = 0;
	CHECK(sandbox_complete(&sb));
	CHECK_STR(sandbox_describe(&sb, buf, sizeof(buf)),
		  "pidns=yes, netns=yes, ipcns=yes, seccomp=yes");
	/* a buffer too small: cut at a whole item, still a string */
	CHECK_STR(sandbox_describe(&sb, buf, 24), "pidns=yes, netns=yes");
	sb.err[SANDBOX_NETNS] = 4095;       /* no name for it */
	CHECK_STR(sandbox_describe(&sb, buf, sizeof(buf)),
		  "pidns=yes, netns=unavailable (errno 4095), ipcns=yes, seccomp=yes");
}

static void test_probe(void)
{
	struct sandbox sb;

	/* What -t does; the answers depend on the host (root, kernel, container), but every
	 * feature must have been tried. */
	sandbox_probe(&sb);
	for (size_t i = 0; i < SANDBOX_FEATURES; i++)
		CHECK(sb.err[i] >= 0);
}

int main(void)
{
	parent = getpid();
	test_describe();
	test_filter();
	test_probe();
	return unit_done("test_sandbox");
}
