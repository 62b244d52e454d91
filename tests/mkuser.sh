#!/bin/sh
# Make what the daemons need on the host, if missing (idempotent; run as root):
#   - the unprivileged system user `postern` (unpriv_user), which runs the pre-login
#     worker: no home, no shell, no password;
#   - state_dir /var/lib/postern, 0700 root (login throttle, TLS ticket keys).
# `make install` runs it; so do the integration tests and demo/demo.sh.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

user=postern
state_dir=${POSTERN_STATE_DIR:-/var/lib/postern}

if [ "$(id -u)" -ne 0 ]; then
	echo "mkuser.sh: run as root" >&2
	exit 1
fi

if getent passwd "$user" >/dev/null 2>&1; then
	echo "mkuser.sh: user $user exists (uid $(id -u "$user"))"
else
	# --user-group: its own group, so that it shares no files with anyone.
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "postern mail daemons (unprivileged)" "$user"
	echo "mkuser.sh: created system user $user (uid $(id -u "$user"))"
fi

if [ -d "$state_dir" ]; then
	echo "mkuser.sh: $state_dir exists"
else
	mkdir -p "$state_dir"
	chown root:root "$state_dir"
	chmod 0700 "$state_dir"
	echo "mkuser.sh: created $state_dir (0700 root)"
fi
