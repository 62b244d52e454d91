#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/log.h"
#include "privsep/priv.h"
#include "privsep/server_int.h"
#include "privsep/throttle.h"
#include "privsep/tls.h"
#include "base/util.h"
#include "privsep/wrap.h"

/* After login: bytes from the client go to the session, the session's replies go to the
 * client.  Client->session bytes wait in `pend` while the session is not reading, so
 * neither side can block the other into a deadlock (the session may be busy writing a
 * large message while the client pipelines commands). */
int relay_run(struct conn *c, int sock, unsigned timeout_s)
{
	char pend[IO_CHUNK], out[IO_CHUNK];
	size_t plen = 0, poff = 0;
	const char *data;

	plen = linebuf_pending(c->lb, &data);
	if (plen > sizeof(pend))
		return -1;
	memcpy(pend, data, plen);
	linebuf_reset(c->lb);
	if (fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK) == -1)
		return -1;
	c->timeout_s = timeout_s;
	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = c->rfd, .events = plen == 0 ? POLLIN : 0 },
			{ .fd = sock, .events = POLLIN | (plen > 0 ? POLLOUT : 0) },
		};
		bool client_ready = plen == 0 && conn_has_input(c);
		if (!client_ready) {
			int rc = poll(pfd, 2, (int)timeout_s * 1000);
			if (rc == 0)
				return 0;       /* nobody said anything for too long */
			if (rc < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
		}
		if (client_ready || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = conn_read(c, pend, sizeof(pend));
			if (n <= 0)
				return 0;       /* client gone: the session sees EOF */
			plen = (size_t)n;
			poff = 0;
		}
		if (plen > 0) {
			ssize_t n = send(sock, pend + poff, plen, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				return 0;       /* session gone */
			if (n > 0) {
				poff += (size_t)n;
				plen -= (size_t)n;
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = recv(sock, out, sizeof(out), 0);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				conn_flush(c);
				return 0;       /* session ended */
			}
			if (conn_write(c, out, (size_t)n) == -1 || conn_flush(c) == -1)
				return 0;
		}
	}
}

