#!/bin/sh
# Install what building and testing postern needs on Debian 12, as root, with no
# questions (CI has no stdin).  Idempotent: when every package is there it runs no apt
# at all.  `make deps` (and so `make check` and `make demo`) runs it.
set -eu

PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
DEBIAN_FRONTEND=noninteractive
export DEBIAN_FRONTEND

# Package                 why
PACKAGES="
build-essential           gcc, make, libc headers
clang                     the fuzz targets (libFuzzer)
libclang-rt-14-dev        libFuzzer and the sanitizer runtimes for clang
pkg-config
libssl-dev                OpenSSL 3: TLS
libpam0g-dev              PAM
libwrap0-dev              libwrap: hosts.allow / hosts.deny
libinih-dev               the INI config parser
liblockfile-dev           mbox dot-locking
liblockfile-bin           dotlockfile, the setgid-mail helper liblockfile runs
libseccomp-dev            the pre-login worker's system-call allow-list
zlib1g-dev                zlib: IMAP COMPRESS=DEFLATE
gdb                       sandbox tests: a system call made from inside a live worker
openssl                   the openssl command: mkcert.sh, tests (s_client)
ca-certificates
python3                   integration tests (poplib, ssl)
python3-pytest
curl                      integration tests and the demo: a real POP3S client
openbsd-inetd             a real launcher in the integration tests
systemd                   systemd-socket-activate: the other launcher; systemd-analyze
libpam-modules            pam_unix and friends for the test accounts
libpam-runtime            /etc/pam.d/common-*
passwd                    useradd, userdel, chpasswd
procps                    ps, pgrep for the tests' process checks
iproute2                  ss: free ports, the demo's port check; ip netns: the two-domain tests
fail2ban                  fail2ban-regex for the filter test
fetchmail                 integration tests: a real POP3 mail fetcher
dnsmasq-base              a real DNS server: the DNSBL unit test, the two-domain tests' MX/A/TXT (binary only: no service, nothing on port 53)
bind9-dnsutils            dig: the two-domain tests query their DNS from inside a host's namespace
python3-dnspython         the Python resolver (MX, TXT) in the two-domain tests
libio-socket-inet6-perl   swaks -6: the two-domain tests' IPv6 port-25 path
isync                     mbsync: a real two-way IMAP syncer for the imapd client tests
mutt                      a real interactive IMAP client, driven in tmux by the imapd client tests
interimap                 a real two-way IMAP syncer built on QRESYNC, LIST-STATUS, COMPRESS
imapfilter                a real IMAP mail filter (SEARCH, then move, flag, delete)
tmux                      the terminal that runs mutt in those tests (send-keys, capture-pane)
swaks                     a real SMTP client for the smtp-submit tests (STARTTLS, AUTH, pipelining)
"

names=$(printf '%s\n' "$PACKAGES" | awk 'NF { print $1 }')

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

missing=
for p in $names; do
	installed "$p" || missing="$missing $p"
done

if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps.sh: missing:$missing; run as root (sudo make deps)" >&2
		exit 1
	fi
	echo "install-deps.sh: installing:$missing"

	# Don't let package scripts start services (inetd, fail2ban): in a container
	# without a running systemd they fail and would fail the install.  A policy-rc.d
	# that already exists is the administrator's: keep it.
	policy=/usr/sbin/policy-rc.d
	made_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# postern install-deps.sh: temporary, no service starts\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=yes
	fi
	cleanup() {
		if [ -n "$made_policy" ]; then rm -f "$policy"; fi
	}
	trap cleanup EXIT
	trap 'exit 1' HUP INT TERM

	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends \
		-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
		$missing </dev/null

	still=
	for p in $missing; do
		installed "$p" || still="$still $p"
	done
	if [ -n "$still" ]; then
		echo "install-deps.sh: still missing after apt-get:$still" >&2
		exit 1
	fi
fi

# The tests run Debian's python3 (/usr/bin/python3 -m pytest), whatever a pyenv or
# virtualenv puts first on PATH: check that it has pytest.
if ! /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1; then
	echo "install-deps.sh: /usr/bin/python3 cannot import pytest (python3-pytest)" >&2
	exit 1
fi

# Tools the tests call by path.
for tool in /usr/bin/systemd-socket-activate /usr/sbin/inetd /usr/bin/fail2ban-regex \
	    /usr/bin/openssl /usr/bin/curl /usr/sbin/useradd /usr/bin/dotlockfile \
	    /usr/bin/fetchmail /usr/bin/mbsync /usr/bin/mutt /usr/bin/tmux \
	    /usr/bin/interimap /usr/bin/imapfilter /usr/bin/swaks /sbin/ip /usr/sbin/dnsmasq \
	    /usr/bin/dig; do
	if [ ! -x "$tool" ]; then
		echo "install-deps.sh: $tool is missing" >&2
		exit 1
	fi
done

# dnsmasq-base is the bare binary: unlike the package `dnsmasq` it brings no system
# service, so nothing is started or enabled and nothing takes the host's port 53 (the
# tests run their dnsmasq inside a network namespace of their own).  The policy-rc.d
# above keeps any other package's service from starting during the install.

# The two-domain tests (tests/integ/netns.py) need network namespaces: root with
# CAP_SYS_ADMIN and CAP_NET_ADMIN (a container started without them cannot).
if [ "$(id -u)" -eq 0 ]; then
	probe="ptns-probe-$$"
	if ip netns add "$probe" 2>/dev/null; then
		ip netns delete "$probe"
	else
		echo "install-deps.sh: warning: 'ip netns add' fails here: the two-domain tests will be skipped" >&2
	fi
fi

echo "install-deps.sh: all dependencies present"
