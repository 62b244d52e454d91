#!/bin/sh
# Make what the daemons need on the host, if missing (idempotent; run as root):
#   - the unprivileged system user `postern` (unpriv_user), which runs the pre-login
#     worker: no home, no shell, no password;
#   - state_dir /var/lib/postern, 0700 root (login throttle, TLS ticket keys);
#   - smtp-submit's spool user `postern-spool` (spool_user), which runs the SMTP session
#     and owns the spool: no home, no shell, no password;
#   - spool_dir /var/spool/postern, 0700 postern-spool, with tmp/ and queue/ (0700
#     postern-spool, as smtp-submit's spool_open() demands of all three).
# POSTERN_STATE_DIR and POSTERN_SPOOL_DIR name other directories (the demo's, a test's).
# `make install` runs it; so do the integration tests and demo/demo.sh.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH

user=postern
state_dir=${POSTERN_STATE_DIR:-/var/lib/postern}
spool_user=postern-spool
spool_dir=${POSTERN_SPOOL_DIR:-/var/spool/postern}

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

if getent passwd "$spool_user" >/dev/null 2>&1; then
	echo "mkuser.sh: user $spool_user exists (uid $(id -u "$spool_user"))"
else
	# Not the same user as the worker's: a compromised pre-login worker must not be able
	# to touch the spool.
	useradd --system --user-group --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin --comment "postern smtp-submit spool" "$spool_user"
	echo "mkuser.sh: created system user $spool_user (uid $(id -u "$spool_user"))"
fi

# spool_dir and its tmp/ and queue/: owned by the spool user, nothing for anyone else.
# An existing directory is left alone when it is right; a wrong owner or mode is an error
# to fix by hand (it might be another program's directory), not something to change.
spool_group=$(id -gn "$spool_user")
if [ ! -e "$spool_dir" ]; then
	mkdir -p "$(dirname "$spool_dir")"
	install -d -m 0700 -o "$spool_user" -g "$spool_group" "$spool_dir"
	echo "mkuser.sh: created $spool_dir (0700 $spool_user)"
fi
for d in "$spool_dir" "$spool_dir/tmp" "$spool_dir/queue"; do
	if [ ! -e "$d" ]; then
		install -d -m 0700 -o "$spool_user" -g "$spool_group" "$d"
	fi
	if [ -L "$d" ] || [ ! -d "$d" ] || [ "$(stat -c %U "$d")" != "$spool_user" ] ||
		[ "$(stat -c %a "$d")" != 700 ]; then
		echo "mkuser.sh: $d must be a directory owned by $spool_user, mode 0700:" >&2
		echo "    chown $spool_user:$spool_group $d && chmod 0700 $d" >&2
		exit 1
	fi
done
echo "mkuser.sh: $spool_dir is ready (tmp/, queue/; 0700 $spool_user)"
