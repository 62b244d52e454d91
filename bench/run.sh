#!/bin/sh
# make bench: ipop3d and imapd against Dovecot, smtp-submit against Postfix, on this
# machine, side by side; writes bench/RESULTS.md
# (raw numbers, logs and perf data in build/bench/).
#
# `make bench BENCH=smtp` (or BENCH=pop3, BENCH=imap, BENCH="pop3 imap"): only those parts.
#
# Installs what a fresh Debian 12 lacks for it (Dovecot's POP3 and IMAP servers, Postfix,
# the launcher, the client's Python, and perf for the CPU profile if it can), without
# letting the packages start any service: a policy-rc.d that refuses is put in place for the install if the
# host has none, and removed after.  A Dovecot installed here is also left disabled at
# boot, and so is a Postfix installed here (installed with debconf's "No configuration":
# no /etc/postfix/main.cf, nothing on port 25; the smtp bench runs it from a private
# config directory on loopback high ports, and stops it).  Then bench/bench.py (as root) makes its accounts and certificates, runs both
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

# BENCH_PARTS (make bench BENCH=...): "pop3 imap smtp" (default), or some of them.  The
# POP3 bench writes bench/RESULTS.md, the IMAP bench (bench/imapbench.py) and the SMTP
# bench (bench/smtpbench.py) then add their sections to it.
parts=${BENCH_PARTS:-pop3 imap smtp}
pkgs="systemd python3 openssl passwd"
case " $parts " in *" pop3 "*) pkgs="$pkgs dovecot-core dovecot-pop3d" ;; esac
case " $parts " in *" imap "*) pkgs="$pkgs dovecot-core dovecot-imapd" ;; esac
# smtp: Postfix to compare with, Dovecot's auth for its SASL (as Debian's docs set up)
case " $parts " in *" smtp "*) pkgs="$pkgs dovecot-core postfix" ;; esac
need=
for pkg in $pkgs; do
	case " $need " in *" $pkg "*) continue ;; esac
	installed "$pkg" || need="$need $pkg"
done
opt=
if ! command -v perf >/dev/null 2>&1; then
	opt=linux-perf
fi
# smtp: strace counts the system calls (syncs, forks, execs) of one submission
case " $parts " in *" smtp "*)
	command -v strace >/dev/null 2>&1 || opt="$opt strace" ;;
esac
opt=${opt# }

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
	had_postfix=
	if installed postfix; then
		had_postfix=1
	else
		# no main.cf, no service: the bench writes its own configuration elsewhere
		echo "postfix postfix/main_mailer_type select No configuration" |
			debconf-set-selections
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
		echo "bench: installing (optional, for the CPU profile and system call counts): $opt"
		if ! apt-get install -y -q $opt >>"$log" 2>&1; then
			[ -n "$updated" ] || apt-get update -q >>"$log" 2>&1 || true
			apt-get install -y -q $opt >>"$log" 2>&1 ||
				echo "bench: $opt not installed: the report will have no CPU profile or system call counts"
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
	if [ -z "$had_postfix" ] && installed postfix; then
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet postfix.service >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/postfix ]; then
			update-rc.d postfix disable >/dev/null 2>&1 || true
		fi
	fi
fi

case " $parts " in *" pop3 "*)
	/usr/bin/python3 bench/bench.py ;;
esac
case " $parts " in *" imap "*)
	/usr/bin/python3 bench/imapbench.py ;;
esac
case " $parts " in *" smtp "*)
	/usr/bin/python3 bench/smtpbench.py ;;
esac
