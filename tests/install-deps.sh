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
python3-dkim              dkimpy: an independent DKIM verifier for the DKIM signing tests (rsa, ed25519)
python3-nacl              Ed25519 for dkimpy (ed25519-sha256 signatures)
opendkim-tools            opendkim-testmsg (libopendkim): the second DKIM verifier of those tests
util-linux                unshare: the DKIM test's namespace where dnsmasq serves the key records
libidn2-dev               smtp-submit: internationalized domain names (IDNA 2008, UTS #46) in local_domains and addresses
libunbound-dev            the dns library's resolver: DNSSEC-validated answers (DANE's TLSA)
dns-root-data             the DNSSEC root trust anchor the dns library validates with by default
unbound                   the dns library's test: a real authoritative server for a signed test zone
ldnsutils                 ldns-keygen and ldns-signzone: the dns test signs its zone
python3-aiosmtpd          an independent SMTP server as the outbound client's peer (test_smtp_client.py)
"

names=$(printf '%s\n' "$PACKAGES" | awk 'NF { print $1 }')

installed() {
	[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]
}

# Don't let package scripts start services (inetd, fail2ban, postfix): in a container
# without a running systemd they fail and would fail the install.  A policy-rc.d that
# already exists is the administrator's: keep it.
policy=/usr/sbin/policy-rc.d
made_policy=
no_service_starts() {
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\n# postern install-deps.sh: temporary, no service starts\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		made_policy=yes
	fi
	trap cleanup EXIT
	trap 'exit 1' HUP INT TERM
}
cleanup() {
	if [ -n "$made_policy" ]; then rm -f "$policy"; fi
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

	no_service_starts

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
	# The tests only want unbound's binary (they run their own on loopback ports): the
	# package's resolver service, which would answer on port 53 and could take over
	# resolv.conf, stays off at boot.
	case " $missing " in *" unbound "*)
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet unbound.service unbound-resolvconf.service \
				>/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/unbound ]; then
			update-rc.d unbound disable >/dev/null 2>&1 || true
		fi ;;
	esac
fi

# Postfix: the real peer MTA of the interoperability tests (tests/integ/test_smtp_interop.py
# delivers through it to smtp-submit's port 25).  Installed without a main.cf ("No
# configuration") and left disabled: the tests run private instances on loopback ports.
# It would replace another MTA package (exim4, the Debian default, ...): if one is
# installed, Postfix is not, and the interoperability tests fail saying so.
if ! installed postfix; then
	other=$(dpkg-query -W -f='${db:Status-Abbrev}|${Package}|${Provides}\n' 2>/dev/null |
		awk -F'|' '$1 ~ /^ii/ && $3 ~ /mail-transport-agent/ { print $2 }' | head -n 1)
	if [ -n "$other" ]; then
		echo "install-deps.sh: not installing postfix: it would replace the installed MTA $other" \
			"(tests/integ/test_smtp_interop.py will fail)" >&2
	elif [ "$(id -u)" -ne 0 ]; then
		echo "install-deps.sh: missing: postfix; run as root (sudo make deps)" >&2
		exit 1
	else
		echo "install-deps.sh: installing: postfix (no configuration, disabled)"
		no_service_starts
		echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
		[ -n "$missing" ] || apt-get update -q
		apt-get install -y -q --no-install-recommends postfix </dev/null
		installed postfix || { echo "install-deps.sh: postfix did not install" >&2; exit 1; }
		if command -v systemctl >/dev/null 2>&1; then
			systemctl disable --quiet postfix.service >/dev/null 2>&1 || true
		fi
		if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/postfix ]; then
			update-rc.d postfix disable >/dev/null 2>&1 || true
		fi
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
	    /usr/bin/interimap /usr/bin/imapfilter /usr/bin/swaks \
	    /usr/sbin/unbound /usr/bin/ldns-signzone /usr/bin/ldns-keygen \
	    /sbin/ip /usr/sbin/dnsmasq /usr/bin/dig; do
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
