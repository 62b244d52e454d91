#!/bin/sh
# postern demo: ipop3d, imapd and smtp-submit on loopback, with their own certificate,
# account, spool and configuration.
#
#   make demo          (as root: installs the dependencies, builds, runs this)
#   sh demo/stop.sh    stops it and removes the demo account
#
# Everything lives in /var/lib/postern-demo (POSTERN_DEMO_DIR): the local CA and the
# certificate, the configuration, hosts.allow/hosts.deny of its own, the log, the demo
# user's home with a Maildir, smtp-submit's spool and aliases.  ipop3d, imapd and
# smtp-submit run under systemd-socket-activate --accept --inetd, one process per
# connection, as inetd or systemd would run them:
#     127.0.0.1:1110  POP3 (STLS)          127.0.0.1:1995  POP3S (implicit TLS)
#     127.0.0.1:1143  IMAP (STARTTLS)      127.0.0.1:1993  IMAPS (implicit TLS)
#     127.0.0.1:2525  SMTP (-m mx, like 25: mail for @postern.test, no AUTH)
#     127.0.0.1:2587  submission (STARTTLS + AUTH)
#     127.0.0.1:2465  submissions (implicit TLS + AUTH)
# The demo user sends itself a message on 2587 with swaks and reads it back over IMAPS.
# Safe to run again: what exists is kept (account, password, certificate, launchers).
set -eu
umask 022
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

repo=$(cd "$(dirname "$0")/.." && pwd)
demo=${POSTERN_DEMO_DIR:-/var/lib/postern-demo}
user=${POSTERN_DEMO_USER:-demo}
bin=${POSTERN_IPOP3D:-$repo/ipop3d/ipop3d}
imap_bin=${POSTERN_IMAPD:-$repo/imapd/imapd}
pop3_port=${POSTERN_DEMO_POP3_PORT:-1110}
pop3s_port=${POSTERN_DEMO_POP3S_PORT:-1995}
imap_port=${POSTERN_DEMO_IMAP_PORT:-1143}
imaps_port=${POSTERN_DEMO_IMAPS_PORT:-1993}
smtp_bin=${POSTERN_SMTP_SUBMIT:-$repo/smtp-submit/smtp-submit}
smtp_port=${POSTERN_DEMO_SMTP_PORT:-2525}
submission_port=${POSTERN_DEMO_SUBMISSION_PORT:-2587}
smtps_port=${POSTERN_DEMO_SMTPS_PORT:-2465}
# The demo's mail domain: a .test name (RFC 2606), which never resolves outside this host;
# smtp-submit -t wants a real domain name there, not "localhost".
domain=${POSTERN_DEMO_DOMAIN:-postern.test}
addr=127.0.0.1

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

# --- checks ----------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "run as root (it makes an account and runs ipop3d as inetd would)"
[ -x "$bin" ] || die "no $bin: build it first (make all)"
[ -x "$imap_bin" ] || die "no $imap_bin: build it first (make all)"
[ -x "$smtp_bin" ] || die "no $smtp_bin: build it first (make all)"
# Until the daemon is merged, smtp-submit/smtp-submit is the skeleton's stub: the demo then
# runs without it.
smtp=yes
if "$smtp_bin" -t -c /nonexistent 2>&1 </dev/null | grep -q 'not built yet'; then
	smtp=no
fi
case $demo in /*) ;; *) die "POSTERN_DEMO_DIR must be an absolute path" ;; esac
for tool in systemd-socket-activate openssl ss useradd chpasswd getent; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool is missing: run make deps (tests/install-deps.sh)"
done
case $user in
'' | *[!a-z0-9_-]*) die "POSTERN_DEMO_USER must be a plain user name" ;;
esac
case $domain in
'' | *[!a-z0-9.-]* | .* | *. | *..*) die "POSTERN_DEMO_DOMAIN must be a plain domain name" ;;
esac
for port in "$pop3_port" "$pop3s_port" "$imap_port" "$imaps_port" "$smtp_port" \
	"$submission_port" "$smtps_port"; do
	case $port in '' | *[!0-9]*) die "not a port number: '$port'" ;; esac
done
conf=$demo/postern.conf

# --- ports: free, or held by this demo's own launchers -----------------------------------
listening() {   # port -> 0 if something listens on it
	[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]
}

ours() {        # pidfile -> 0 if it names a running launcher of this demo
	[ -s "$1" ] || return 1
	p=$(cat "$1")
	case $p in '' | *[!0-9]*) return 1 ;; esac
	[ -r "/proc/$p/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "systemd-socket-activate.*$conf"
}

port_ok() {     # name port
	if ours "$demo/$1.pid" || ! listening "$2"; then
		return 0
	fi
	say "error: port $2 is in use by another program:"
	ss -Hltnp "sport = :$2" 2>/dev/null | sed 's/^/    /'
	return 1
}
ports_ok=yes
port_ok pop3 "$pop3_port" || ports_ok=no
port_ok pop3s "$pop3s_port" || ports_ok=no
port_ok imap "$imap_port" || ports_ok=no
port_ok imaps "$imaps_port" || ports_ok=no
if [ $smtp = yes ]; then
	port_ok smtp "$smtp_port" || ports_ok=no
	port_ok submission "$submission_port" || ports_ok=no
	port_ok smtps "$smtps_port" || ports_ok=no
fi
[ $ports_ok = yes ] ||
	die "stop that program, or choose other ports: POSTERN_DEMO_POP3_PORT=... POSTERN_DEMO_POP3S_PORT=... POSTERN_DEMO_IMAP_PORT=... POSTERN_DEMO_IMAPS_PORT=... POSTERN_DEMO_SMTP_PORT=... POSTERN_DEMO_SUBMISSION_PORT=... POSTERN_DEMO_SMTPS_PORT=..."

mkdir -p "$demo"
chmod 755 "$demo"
mkdir -p "$demo/state" "$demo/home"
chmod 700 "$demo/state"
chmod 755 "$demo/home"

# --- the unprivileged user of the pre-login worker, smtp-submit's spool user and spool --
had_postern=yes
getent passwd postern >/dev/null 2>&1 || had_postern=no
had_spool_user=yes
getent passwd postern-spool >/dev/null 2>&1 || had_spool_user=no
POSTERN_STATE_DIR=$demo/state POSTERN_SPOOL_DIR=$demo/spool sh "$repo/tests/mkuser.sh" >/dev/null ||
	die "tests/mkuser.sh failed (sh demo/stop.sh, then run this again)"
[ $had_postern = yes ] || say "created the system user postern (the daemons' unprivileged worker)"
[ $had_spool_user = yes ] || say "created the system user postern-spool (smtp-submit's spool)"

# --- the PAM service pop3 ----------------------------------------------------------------
# Without /etc/pam.d/pop3, PAM would use /etc/pam.d/other and ipop3d -t reports it.
# Installed from pam.d/pop3 only if absent; stop.sh removes it only if this demo made it.
pam_file=/etc/pam.d/pop3
if [ ! -e "$pam_file" ]; then
	install -m 644 "$repo/pam.d/pop3" "$pam_file"
	cp "$pam_file" "$demo/.created-pam"
	say "installed the PAM service $pam_file (from pam.d/pop3)"
fi
if [ ! -e /etc/pam.d/imap ]; then
	install -m 644 "$repo/pam.d/imap" /etc/pam.d/imap
	cp /etc/pam.d/imap "$demo/.created-pam-imap"
	say "installed the PAM service /etc/pam.d/imap (from pam.d/imap)"
fi
if [ $smtp = yes ] && [ ! -e /etc/pam.d/smtp ]; then
	install -m 644 "$repo/pam.d/smtp" /etc/pam.d/smtp
	cp /etc/pam.d/smtp "$demo/.created-pam-smtp"
	say "installed the PAM service /etc/pam.d/smtp (from pam.d/smtp)"
fi

# --- certificate -----------------------------------------------------------------------
sh "$repo/mkcert.sh" -d "$demo/tls" localhost 127.0.0.1 ::1 | sed 's/^/demo: /'
ca=$demo/tls/ca.crt

# --- the demo account ------------------------------------------------------------------
home=$demo/home/$user
if getent passwd "$user" >/dev/null 2>&1; then
	if [ ! -e "$demo/.created-user" ] || [ "$(cat "$demo/.created-user")" != "$user" ]; then
		die "a user '$user' exists that this demo did not create: not touching it (set POSTERN_DEMO_USER=another-name)"
	fi
	home=$(getent passwd "$user" | cut -d: -f6)
else
	useradd --create-home --home-dir "$home" --shell /usr/sbin/nologin \
		--user-group --comment "postern demo" "$user"
	printf '%s\n' "$user" >"$demo/.created-user"
	rm -f "$demo/password"
	say "created the user $user (home $home, no shell)"
fi
if [ ! -s "$demo/password" ]; then
	# 16 random letters and digits: fine in a URL, and easy to paste.
	pass=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9' | cut -c1-16)
	[ ${#pass} -eq 16 ] || die "could not make a password"
	(umask 077 && printf '%s\n' "$pass" >"$demo/password")
	printf '%s:%s\n' "$user" "$pass" | chpasswd
else
	pass=$(cat "$demo/password")
fi
uid=$(id -u "$user")
group=$(id -gn "$user")

# A Maildir with a welcome message (again only if the mailbox is empty).
md=$home/Maildir
for d in "$md" "$md/cur" "$md/new" "$md/tmp"; do
	[ -d "$d" ] || install -d -m 700 -o "$user" -g "$group" "$d"
done
if [ -z "$(ls -A "$md/new")" ] && [ -z "$(ls -A "$md/cur")" ]; then
	now=$(date +%s)
	name="$now.P$$.$(hostname | tr -c 'A-Za-z0-9.\n-' '_')"
	cat >"$md/tmp/$name" <<EOF
Return-Path: <postmaster@localhost>
From: postern demo <postmaster@localhost>
To: $user@localhost
Subject: Welcome to postern
Date: $(date -R)
Message-ID: <$now.$$.demo@localhost>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hello,

this message was read from $md
by ipop3d or imapd, after a TLS handshake with a certificate of the demo's own
CA and a login checked by PAM (service pop3 or imap) against the account $user.

Delete it with your client and it is gone from the Maildir; run demo/demo.sh
again for a new one.
EOF
	chown "$user:$group" "$md/tmp/$name"
	chmod 600 "$md/tmp/$name"
	mv "$md/tmp/$name" "$md/new/$name"
fi

# --- configuration ---------------------------------------------------------------------
cat >"$conf" <<EOF
# postern demo configuration, written by demo/demo.sh (run again: rewritten).
# The keys are explained in postern.conf.sample.
[global]
tls_cert = $demo/tls/postern.crt
tls_key = $demo/tls/postern.key
log = $demo/postern.log
log_debug = yes
hosts_allow = $demo/hosts.allow
hosts_deny = $demo/hosts.deny
state_dir = $demo/state
# Only the demo account may log in.
min_uid = $uid
allow_group = $group

[smtp-submit]
# Mail for @$domain is delivered here (to the demo user's ~/Maildir); every other
# domain is refused on 2525 and needs AUTH on 2587/2465 (and then waits in the queue:
# delivery to other domains comes in a later release).
hostname = mail.$domain
local_domains = $domain
spool_dir = $demo/spool
aliases = $demo/aliases
EOF
cat >"$demo/aliases" <<EOF
# postern demo: aliases(5), read by smtp-submit (the aliases key)
postmaster: $user
abuse: $user
EOF
cat >"$demo/hosts.allow" <<EOF
# postern demo: loopback only
ipop3d, imapd, smtp-submit: 127.0.0.1, [::1]
EOF
cat >"$demo/hosts.deny" <<EOF
# postern demo: everything hosts.allow does not allow
ALL: ALL
EOF
chmod 644 "$conf" "$demo/hosts.allow" "$demo/hosts.deny" "$demo/aliases"

daemons="$bin $imap_bin"
[ $smtp = no ] || daemons="$daemons $smtp_bin"
for b in $daemons; do
	n=$(basename "$b")
	if out=$("$b" -t -c "$conf" 2>&1); then
		say "$n -t: the setup checks out"
	else
		say "warning: $n -t -c $conf reports problems:"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
done

# --- launchers -------------------------------------------------------------------------
start() {       # name port binary [its args]
	name=$1 port=$2 prog=$3
	shift 3
	pidfile=$demo/$name.pid
	if ours "$pidfile"; then
		say "$name already running on $addr:$port (pid $(cat "$pidfile"))"
		return 0
	fi
	rm -f "$pidfile"
	if listening "$port"; then
		say "error: port $port is in use by another program:"
		ss -Hltnp "sport = :$port" 2>/dev/null | sed 's/^/    /'
		say "stop it, or choose other ports: POSTERN_DEMO_POP3_PORT=... POSTERN_DEMO_POP3S_PORT=..."
		return 1
	fi
	nohup systemd-socket-activate --accept --inetd -l "$addr:$port" \
		"$prog" -c "$conf" "$@" </dev/null >>"$demo/launcher.log" 2>&1 &
	echo $! >"$pidfile"
	i=0
	while ! listening "$port"; do
		i=$((i + 1))
		if [ $i -gt 50 ] || ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			say "error: the launcher for $name did not start; $demo/launcher.log says:"
			tail -n 5 "$demo/launcher.log" | sed 's/^/    /'
			rm -f "$pidfile"
			return 1
		fi
		sleep 0.1
	done
	say "started $name on $addr:$port (systemd-socket-activate pid $(cat "$pidfile"))"
}

failed=0
start pop3 "$pop3_port" "$bin" || failed=1
start pop3s "$pop3s_port" "$bin" -s || failed=1
start imap "$imap_port" "$imap_bin" || failed=1
start imaps "$imaps_port" "$imap_bin" -s || failed=1
if [ $smtp = yes ]; then
	start smtp "$smtp_port" "$smtp_bin" -m mx || failed=1
	start submission "$submission_port" "$smtp_bin" -m submission || failed=1
	start smtps "$smtps_port" "$smtp_bin" -m smtps || failed=1
else
	say "smtp-submit is not built yet (the skeleton's stub): no SMTP listeners"
fi
if [ $failed -ne 0 ]; then
	die "not all listeners are up (sh demo/stop.sh cleans up)"
fi

# --- a first real login, to show it works ------------------------------------------------
if command -v curl >/dev/null 2>&1; then
	if list=$(curl -sS --max-time 20 --cacert "$ca" "pop3s://$user:$pass@localhost:$pop3s_port/" 2>&1); then
		n=$(printf '%s\n' "$list" | grep -c '^[0-9]' || true)
		say "checked: a POP3S login as $user works ($n message(s) waiting)"
	else
		say "warning: the test login failed: $list"
		say "see $demo/postern.log"
	fi
	if out=$(curl -sS --max-time 20 --cacert "$ca" "imaps://$user:$pass@localhost:$imaps_port/INBOX?ALL" 2>&1); then
		say "checked: an IMAPS login as $user works (${out#\* })"
	else
		say "warning: the IMAPS test login failed: $out"
		say "see $demo/postern.log"
	fi
fi

# --- a message sent on 587 (STARTTLS + AUTH), read back over IMAPS ----------------------
subject="postern demo $(date +%Y%m%d%H%M%S).$$"
if [ $smtp = yes ] && command -v swaks >/dev/null 2>&1 && command -v curl >/dev/null 2>&1; then
	if out=$(swaks --server localhost:"$submission_port" --tls --tls-verify --tls-ca-path "$ca" \
		--auth PLAIN --auth-user "$user" --auth-password "$pass" \
		--from "$user@$domain" --to "$user@$domain" --h-Subject "$subject" \
		--body "Sent by demo/demo.sh with swaks on port $submission_port (STARTTLS, AUTH PLAIN)." \
		--timeout 30 2>&1); then
		id=$(printf '%s\n' "$out" | sed -n 's/.*250 2\.0\.0 Ok: queued as \([0-9A-Z]*\).*/\1/p' | head -n 1)
		say "checked: swaks sent a message on $submission_port as $user (queue id ${id:-?})"
		found=
		i=0
		while [ $i -lt 50 ]; do
			found=$(curl -sS --max-time 20 --cacert "$ca" -X "SEARCH SUBJECT \"$subject\"" \
				"imaps://$user:$pass@localhost:$imaps_port/INBOX" 2>/dev/null |
				sed -n 's/^\* SEARCH \([0-9][0-9 ]*\).*/\1/p' | tr -d '\r')
			[ -z "$found" ] || break
			i=$((i + 1))
			sleep 0.2
		done
		if [ -n "$found" ]; then
			say "checked: it arrived in INBOX, read over IMAPS (message $found, \"$subject\")"
		else
			say "warning: the message did not show up in INBOX over IMAPS; see $demo/postern.log"
		fi
	else
		say "warning: sending with swaks failed:"
		printf '%s\n' "$out" | tail -n 8 | sed 's/^/    /'
		say "see $demo/postern.log"
	fi
elif [ $smtp = yes ]; then
	say "swaks or curl is missing (make deps): not sending the test message"
fi

cat <<EOF

postern demo: ipop3d is listening on $addr:$pop3_port (POP3 + STLS) and $addr:$pop3s_port (POP3S),
imapd on $addr:$imap_port (IMAP + STARTTLS) and $addr:$imaps_port (IMAPS).

  user:      $user
  password:  $pass
  CA:        $ca   (the certificate is for localhost, 127.0.0.1, ::1)

List and read the mail with curl:
  curl --cacert $ca pop3s://$user:$pass@localhost:$pop3s_port/
  curl --cacert $ca pop3s://$user:$pass@localhost:$pop3s_port/1
  curl --cacert $ca --ssl-reqd pop3://$user:$pass@localhost:$pop3_port/1

Talk POP3 yourself (STLS first; then type USER $user, PASS $pass, STAT, LIST, RETR 1, QUIT):
  openssl s_client -connect $addr:$pop3_port -starttls pop3 -CAfile $ca -verify_hostname localhost -verify_return_error -crlf -quiet
  openssl s_client -connect $addr:$pop3s_port -CAfile $ca -verify_hostname localhost -verify_return_error -crlf -quiet

Python:
  python3 -c 'import poplib, ssl; c = ssl.create_default_context(cafile="$ca"); p = poplib.POP3_SSL("localhost", $pop3s_port, context=c); p.user("$user"); p.pass_("$pass"); print(p.stat()); print(b"\n".join(p.retr(1)[1]).decode()); p.quit()'

IMAP with a real mail client (Thunderbird, Evolution, mutt...) on this machine:
  server localhost, port $imaps_port, connection SSL/TLS (or port $imap_port with STARTTLS),
  user name $user, normal password; import $ca as a trusted CA first
  (Thunderbird: Settings > Privacy & Security > Certificates > Manage > Authorities >
  Import).  mutt:
  mutt -f imaps://$user@localhost:$imaps_port/INBOX -e 'set ssl_ca_certificates_file=$ca'

IMAP with curl and Python:
  curl --cacert $ca 'imaps://$user:$pass@localhost:$imaps_port/INBOX?ALL'
  curl --cacert $ca 'imaps://$user:$pass@localhost:$imaps_port/INBOX/;UID=1'
  python3 -c 'import imaplib, ssl; c = ssl.create_default_context(cafile="$ca"); m = imaplib.IMAP4_SSL("localhost", $imaps_port, ssl_context=c); m.login("$user", "$pass"); print(m.select("INBOX")); print(m.fetch("1", "(BODY.PEEK[])")[1][0][1].decode()); m.logout()'

EOF
if [ $smtp = yes ]; then
	cat <<EOF

smtp-submit is listening on $addr:$smtp_port (SMTP as on port 25: mail for @$domain, no AUTH),
$addr:$submission_port (submission: STARTTLS, then AUTH) and $addr:$smtps_port (submissions: implicit TLS, AUTH).

Send as $user on $submission_port (STARTTLS) or $smtps_port (TLS), then read it over IMAPS:
  swaks --server localhost:$submission_port --tls --tls-verify --tls-ca-path $ca \\
        --auth PLAIN --auth-user $user --auth-password $pass \\
        --from $user@$domain --to $user@$domain --h-Subject hello --body 'Hi there'
  swaks --server localhost:$smtps_port --tls-on-connect --tls-verify --tls-ca-path $ca \\
        --auth LOGIN --auth-user $user --auth-password $pass \\
        --from $user@$domain --to postmaster@$domain --h-Subject 'to an alias'
  curl --cacert $ca 'imaps://$user:$pass@localhost:$imaps_port/INBOX?ALL'
Mail from another server, as on port 25 (no AUTH; only @$domain, and no relaying):
  swaks --server localhost:$smtp_port --from someone@example.org --to $user@$domain
  swaks --server localhost:$smtp_port --from someone@example.org --to victim@example.com   # 554 5.7.1
A client (Thunderbird...): outgoing server localhost, port $submission_port STARTTLS or $smtps_port SSL/TLS,
  user name $user, normal password; the From: address must be $user@$domain.
The queue: $smtp_bin -c $conf -bp   (list)   -q   (run it)
EOF
fi
cat <<EOF

The log:     tail -f $demo/postern.log
Stop it:     sh $repo/demo/stop.sh   (stops the listeners, removes the user $user and $demo)
EOF
