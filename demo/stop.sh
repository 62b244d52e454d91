#!/bin/sh
# Stop the postern demo (demo/demo.sh): its listeners, the connections still open, the
# demo account, everything in the demo directory (smtp-submit's spool too), and
# /etc/pam.d/pop3, imap and smtp if demo.sh installed them.  Safe to run when nothing runs.
set -eu
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

demo=${POSTERN_DEMO_DIR:-/var/lib/postern-demo}
conf=$demo/postern.conf

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root"
case $demo in /?*) ;; *) die "POSTERN_DEMO_DIR must be an absolute path" ;; esac
if [ ! -d "$demo" ]; then
	say "nothing to stop: no $demo"
	exit 0
fi

# The command line of a process, or nothing.
cmdline() {
	if [ -r "/proc/$1/cmdline" ]; then tr '\0' ' ' <"/proc/$1/cmdline"; fi
}

# Wait up to 5 s for the pids to exit, then KILL what is left.
reap() {
	i=0
	while [ $i -lt 50 ]; do
		alive=
		for p in "$@"; do
			if kill -0 "$p" 2>/dev/null; then alive="$alive $p"; fi
		done
		[ -n "$alive" ] || return 0
		sleep 0.1
		i=$((i + 1))
	done
	# shellcheck disable=SC2086
	kill -KILL $alive 2>/dev/null || true
}

# 1. The launchers, by the pids demo.sh recorded (only if they are still ours).
stopped=
for pidfile in "$demo"/*.pid; do
	[ -e "$pidfile" ] || continue
	name=$(basename "$pidfile" .pid)
	pid=$(cat "$pidfile")
	case $pid in '' | *[!0-9]*) rm -f "$pidfile"; continue ;; esac
	case $(cmdline "$pid") in
	*systemd-socket-activate*"$conf"*)
		kill -TERM "$pid" 2>/dev/null || true
		stopped="$stopped $pid"
		say "stopped the $name listener (pid $pid)" ;;
	*) say "the $name listener (pid $pid) was not running" ;;
	esac
	rm -f "$pidfile"
done
if [ -n "$stopped" ]; then
	# shellcheck disable=SC2086
	reap $stopped
fi

# 2. Connections still open: the ipop3d, imapd and smtp-submit processes started with this
# demo's config (smtp-submit's sessions and deliveries too: forks with the same command
# line).
left=
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	case $(cmdline "$p") in
	*ipop3d*" -c $conf"* | *imapd*" -c $conf"* | *smtp-submit*" -c $conf"*) left="$left $p" ;;
	esac
done
if [ -n "$left" ]; then
	# shellcheck disable=SC2086
	kill -TERM $left 2>/dev/null || true
	# shellcheck disable=SC2086
	reap $left
	say "ended the connections still open (pids$left)"
fi

# 3. The demo account, if demo.sh made it.
if [ -s "$demo/.created-user" ]; then
	user=$(cat "$demo/.created-user")
	if getent passwd "$user" >/dev/null 2>&1; then
		# its sessions, if any (the account is the demo's own)
		pkill -KILL -u "$user" 2>/dev/null || true
		userdel --remove "$user" 2>/dev/null || userdel "$user"
		say "removed the user $user"
	fi
fi
# The system users postern and postern-spool stay: they have no home, shell or password,
# and an installed postern needs them too.

# /etc/pam.d/pop3, if demo.sh installed it and nobody changed it since.
if [ -f "$demo/.created-pam" ] && cmp -s "$demo/.created-pam" /etc/pam.d/pop3; then
	rm -f /etc/pam.d/pop3
	say "removed /etc/pam.d/pop3 (installed by the demo)"
fi

if [ -f "$demo/.created-pam-imap" ] && cmp -s "$demo/.created-pam-imap" /etc/pam.d/imap; then
	rm -f /etc/pam.d/imap
	say "removed /etc/pam.d/imap (installed by the demo)"
fi

if [ -f "$demo/.created-pam-smtp" ] && cmp -s "$demo/.created-pam-smtp" /etc/pam.d/smtp; then
	rm -f /etc/pam.d/smtp
	say "removed /etc/pam.d/smtp (installed by the demo)"
fi

# 4. The files: certificate, configuration, log, home, spool.
rm -rf "$demo"
say "removed $demo"
