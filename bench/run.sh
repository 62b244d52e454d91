#!/bin/sh
# make bench: ipop3d against Dovecot on this machine, side by side; writes bench/RESULTS.md.
#
# Installs what a fresh Debian 12 lacks for it (Dovecot's POP3 server, the launcher, the
# Python client's interpreter), without letting the packages start any service: a
# policy-rc.d that refuses is put in place for the install if the host has none, and
# removed after.  A Dovecot installed here is also left disabled at boot.  Then
# bench/bench.py (as root) makes its accounts and certificates, runs both servers on
# 127.0.0.1 only, measures, and stops and removes everything it made.
# `make bench` builds ipop3d first (make deps all); run alone, this needs ipop3d/ipop3d.
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: run as root" >&2
	exit 1
fi

# package -> a file it brings (checked first, so that nothing is asked of apt needlessly)
need=
for pf in dovecot-pop3d:/usr/lib/dovecot/pop3 dovecot-core:/usr/sbin/dovecot \
	systemd:/usr/bin/systemd-socket-activate python3:/usr/bin/python3 \
	openssl:/usr/bin/openssl \
	passwd:/usr/sbin/useradd; do
	pkg=${pf%%:*}
	file=${pf#*:}
	if ! dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		need="$need $pkg"
	elif [ ! -e "$file" ]; then
		need="$need $pkg"
	fi
done

if [ -n "$need" ]; then
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\n# postern bench: no service starts during the install\nexit 101\n' \
			> /usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT INT TERM
	fi
	had_dovecot=
	if dpkg-query -W -f '${Status}' dovecot-core 2>/dev/null | grep -q 'install ok installed'; then
		had_dovecot=1
	fi
	echo "bench: installing:$need"
	export DEBIAN_FRONTEND=noninteractive
	# shellcheck disable=SC2086
	if ! apt-get install -y -q $need >/tmp/postern-bench-apt.log 2>&1; then
		apt-get update -q >>/tmp/postern-bench-apt.log 2>&1 || true
		# shellcheck disable=SC2086
		apt-get install -y -q $need >>/tmp/postern-bench-apt.log 2>&1 || {
			tail -20 /tmp/postern-bench-apt.log >&2
			echo "bench: apt-get install failed (log: /tmp/postern-bench-apt.log)" >&2
			exit 1
		}
	fi
	rm -f /tmp/postern-bench-apt.log
	if [ -n "$policy" ]; then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT INT TERM
	fi
	# The package enables Dovecot at boot on 110/143/995/993: the bench only wanted
	# the binaries, so a Dovecot it brought stays off.
	if [ -z "$had_dovecot" ]; then
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet dovecot.service dovecot.socket >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/dovecot ]; then
			update-rc.d dovecot disable >/dev/null 2>&1 || true
		fi
	fi
fi

exec /usr/bin/python3 bench/bench.py
