/* What the daemon's modules share (submit.h): the mode and our host name. */
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "base/util.h"
#include "submit.h"

__attribute__((weak)) enum submit_mode submit_mode = SUBMIT_MODE_MX;

const char *submit_hostname(const struct config *cfg)
{
	/* the one name of this process (its only state): set once, read-only afterwards */
	static char name[256];

	if (name[0] != '\0')
		return name;
	if (cfg->hostname != NULL && cfg->hostname[0] != '\0' &&
	    util_snprintf(name, sizeof(name), "%s", cfg->hostname) != -1)
		return name;
	char host[256];
	if (gethostname(host, sizeof(host) - 1) == -1 || host[0] == '\0')
		util_snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_flags = AI_CANONNAME };
	struct addrinfo *ai = NULL;
	if (strchr(host, '.') == NULL && getaddrinfo(host, NULL, &hints, &ai) == 0 &&
	    ai != NULL && ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.') != NULL &&
	    util_snprintf(name, sizeof(name), "%s", ai->ai_canonname) != -1) {
		freeaddrinfo(ai);
		return name;
	}
	if (ai != NULL)
		freeaddrinfo(ai);
	util_snprintf(name, sizeof(name), "%s", host);
	return name;
}
