#!/bin/sh
# make bench: ipop3d and imapd against Dovecot on this machine, side by side; writes
# bench/RESULTS.md
# (raw numbers, logs and perf data in build/bench/).
#
# Installs what a fresh Debian 12 lacks for it (Dovecot's POP3 and IMAP servers, the launcher, the
# client's Python, and perf for the CPU profile if it can), without letting the packages
# start any service: a policy-rc.d that refuses is put in place for the install if the
# host has none, and removed after.  A Dovecot installed here is also left disabled at
# boot.  Then bench/bench.py (as root) makes its accounts and certificates, runs both
# servers on 127.0.0.1 only, measures, and stops and removes everything it made.
# `make bench` builds ipop3d first (make deps all); run alone, this needs ipop3d/ipop3d.
# Environment knobs: see bench/bench.py (BENCH_LOGINS, BENCH_LOGINS_RSA, ...) and
# bench/imapbench.py (QUICK=1 for a small run, IMAP_BIG, IMAP_SMALL, ...).
set -eu
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "bench: run as root" >&2
	exit 1
fi

installed() {
	dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

need=
for pkg in dovecot-core dovecot-pop3d dovecot-imapd systemd python3 openssl passwd; do
	installed "$pkg" || need="$need $pkg"
done
opt=
if ! command -v perf >/dev/null 2>&1; then
	opt=linux-perf
fi

if [ -n "$need$opt" ]; then
	log=/tmp/postern-bench-apt.$$.log
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\n# postern bench: no service starts during the install\nexit 101\n' \
			> /usr/sbin/policy-rc.d
		chmod 0755 /usr/sbin/policy-rc.d
		policy=1
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT INT TERM
	fi
	had_dovecot=
	if installed dovecot-core; then
		had_dovecot=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	updated=
	if [ -n "$need" ]; then
		echo "bench: installing:$need"
		# shellcheck disable=SC2086
		if ! apt-get install -y -q $need >"$log" 2>&1; then
			apt-get update -q >>"$log" 2>&1 || true
			updated=1
			# shellcheck disable=SC2086
			apt-get install -y -q $need >>"$log" 2>&1 || {
				tail -20 "$log" >&2
				echo "bench: apt-get install failed (log: $log)" >&2
				exit 1
			}
		fi
	fi
	if [ -n "$opt" ]; then
		echo "bench: installing (optional, for the CPU profile): $opt"
		if ! apt-get install -y -q $opt >>"$log" 2>&1; then
			[ -n "$updated" ] || apt-get update -q >>"$log" 2>&1 || true
			apt-get install -y -q $opt >>"$log" 2>&1 ||
				echo "bench: $opt not installed: the report will have no CPU profile"
		fi
	fi
	rm -f "$log"
	if [ -n "$policy" ]; then
		rm -f /usr/sbin/policy-rc.d
		trap - EXIT INT TERM
	fi
	# The package enables Dovecot at boot on 110/143/995/993: the bench only wanted
	# the binaries, so a Dovecot it brought stays off.
	if [ -z "$had_dovecot" ] && installed dovecot-core; then
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet dovecot.service dovecot.socket >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/dovecot ]; then
			update-rc.d dovecot disable >/dev/null 2>&1 || true
		fi
	fi
fi

# BENCH_PARTS: "pop3 imap" (default), or one of them.  The POP3 bench writes
# bench/RESULTS.md, the IMAP bench (bench/imapbench.py) then adds its section to it.
parts=${BENCH_PARTS:-pop3 imap}
case " $parts " in *" pop3 "*)
	/usr/bin/python3 bench/bench.py ;;
esac
case " $parts " in *" imap "*)
	/usr/bin/python3 bench/imapbench.py ;;
esac
