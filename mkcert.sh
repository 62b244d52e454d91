#!/bin/sh
# postern-mkcert: the TLS certificate of the postern daemons (ipop3d, imapd, smtp-submit).
#
#   mkcert.sh [-d DIR] [-t ecdsa|rsa] [-f] NAME...
#       Make (once) a local CA, DIR/ca.crt + DIR/ca.key, and a host certificate
#       DIR/postern.crt + DIR/postern.key signed by it, for the host names and addresses
#       given.  Run again: the CA is kept, and so is a host certificate that is still
#       valid for 30 days or more and has exactly these names; otherwise it is renewed.
#       Give the clients DIR/ca.crt to trust.
#   mkcert.sh [-d DIR] --install CERT KEY [CHAIN]
#       Install an existing certificate, e.g. an ACME client's (CERT may be the
#       fullchain file, or give the chain separately).  Run it from the client's renewal
#       hook: the daemons read the files for each new connection, no restart needed.
#
# DIR defaults to /etc/postern/tls (postern.conf: tls_cert, tls_key).  Keys are 0600.
# Installed by `make install` as $(PREFIX)/sbin/postern-mkcert.  POSIX sh + openssl.
set -eu
umask 077
LC_ALL=C
export LC_ALL

prog=${0##*/}
dir=/etc/postern/tls
ktype=
force=0
mode=issue

CA_DAYS=3650            # the local CA: 10 years
HOST_DAYS=825           # the most that clients accept for a server certificate
RENEW_SECONDS=2592000   # renew a host certificate that expires within 30 days

usage() {
	cat <<EOF
usage: $prog [-d DIR] [-t ecdsa|rsa] [-f] NAME...
       $prog [-d DIR] --install CERT KEY [CHAIN]

  NAME      host names and IP addresses the certificate is for (the first is its CN)
  -d DIR    where the files live (default /etc/postern/tls)
  -t TYPE   key type for new keys: ecdsa (P-256, default) or rsa (3072 bits)
  -f        replace a host certificate that the local CA did not issue
  --install install CERT (leaf first; a chain may follow) and its KEY, with an
            optional separate CHAIN appended, as DIR/postern.crt and DIR/postern.key
EOF
}

die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

say() {
	printf '%s: %s\n' "$prog" "$*"
}

# --- temporary files -------------------------------------------------------------------
tmp=
pending=        # temporary files inside DIR, removed unless renamed into place
cleanup() {
	if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
	for f in $pending; do rm -f "$f"; done
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
tmp=$(mktemp -d "${TMPDIR:-/tmp}/postern-mkcert.XXXXXX") || die "cannot make a temporary directory"

# Run openssl; on failure show its messages (indented) and return 1.
ossl() {
	if openssl "$@" 2>"$tmp/err"; then
		return 0
	fi
	sed 's/^/    /' "$tmp/err" >&2
	return 1
}

# A new temporary file in DIR (same file system, so mv is an atomic rename).
# Sets dt (not a command substitution: pending must be updated in this shell).
dir_temp() {
	dt=$(mktemp "$dir/.$1.XXXXXX") || die "cannot create a file in $dir"
	pending="$pending $dt"
}

# --- certificate helpers ---------------------------------------------------------------
enddate() {
	openssl x509 -in "$1" -noout -enddate 2>/dev/null | sed 's/^notAfter=//'
}

# "ECDSA P-256", "RSA 3072", ... of a certificate's or a key's public key.
keydesc() {
	if [ "$2" = cert ]; then
		openssl x509 -in "$1" -noout -pubkey 2>/dev/null >"$tmp/pub.pem" || return 0
	else
		openssl pkey -in "$1" -pubout 2>/dev/null >"$tmp/pub.pem" || return 0
	fi
	openssl pkey -pubin -in "$tmp/pub.pem" -noout -text 2>/dev/null | awk '
		/^Public-Key: \(/ { bits = $2; sub(/\(/, "", bits) }
		/NIST CURVE:/ { curve = $3 }
		/^ASN1 OID:/ && curve == "" { curve = $3 }
		/^Modulus:/ { rsa = 1 }
		END {
			if (rsa) print "RSA " bits
			else if (curve != "") print "ECDSA " curve
			else print bits "-bit key"
		}'
}

# The key type keyword (ecdsa|rsa) of a certificate.
certtype() {
	case $(keydesc "$1" cert) in
	RSA*) echo rsa ;;
	ECDSA*P-256) echo ecdsa ;;
	*) echo other ;;
	esac
}

# 0 if the private key $1 belongs to the certificate $2 (first one in the file).
key_matches() {
	openssl x509 -in "$2" -noout -pubkey >"$tmp/pub.crt" 2>/dev/null || return 1
	openssl pkey -in "$1" -passin pass: -pubout >"$tmp/pub.key" 2>/dev/null || return 1
	cmp -s "$tmp/pub.crt" "$tmp/pub.key"
}

# The subjectAltName entries of a certificate or request, one per line, normalised
# (openssl prints both the same way, so "::1" and "0:0:0:0:0:0:0:1" compare equal).
san_list() {
	openssl "$1" -in "$2" -noout -text 2>/dev/null |
		awk '/X509v3 Subject Alternative Name/ { getline; print; exit }' |
		tr -d ' ' | tr ',' '\n' | tr '[:upper:]' '[:lower:]' | sed '/^$/d' | sort -u
}

# --- names -----------------------------------------------------------------------------
# Prints "dns" or "ip" for a valid name, nothing (and returns 1) for an invalid one.
classify() {
	n=$1
	case $n in
	'') return 1 ;;
	*:*)    # IPv6; openssl checks the syntax itself
		case $n in *[!0-9A-Fa-f:.]*) return 1 ;; esac
		echo ip
		return 0 ;;
	*[!0-9.]*) ;;   # a host name: checked below
	*)      # IPv4: four numbers 0..255
		old_ifs=$IFS; IFS=.
		# shellcheck disable=SC2086
		set -- $n
		IFS=$old_ifs
		[ $# -eq 4 ] || return 1
		case $n in .*|*.|*..*) return 1 ;; esac
		for p in "$@"; do
			case $p in ''|????*) return 1 ;; esac
			[ "$p" -le 255 ] || return 1
		done
		echo ip
		return 0 ;;
	esac
	[ ${#n} -le 253 ] || return 1
	case $n in *[!A-Za-z0-9.*-]*|.*|*.|*..*) return 1 ;; esac
	case $n in
	\*.*) rest=${n#\*.} ;;      # a wildcard only as the whole leftmost label
	*) rest=$n ;;
	esac
	case $rest in *\**) return 1 ;; '') return 1 ;; esac
	old_ifs=$IFS; IFS=.
	# shellcheck disable=SC2086
	set -- $rest
	IFS=$old_ifs
	for label in "$@"; do
		case $label in ''|-*|*-) return 1 ;; esac
		[ ${#label} -le 63 ] || return 1
	done
	echo dns
}

# --- key and certificate making --------------------------------------------------------
make_key() {    # TYPE OUT
	case $1 in
	ecdsa) ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
		-pkeyopt ec_param_enc:named_curve -out "$2" ;;
	rsa) ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 -out "$2" ;;
	esac || die "could not generate a $1 key"
	chmod 600 "$2"
}

serial() {
	# 127 random bits, positive (RFC 5280 4.1.2.2: at most 20 octets)
	printf '0x%s' "$(openssl rand -hex 16 | sed 's/^./7/')"
}

write_cnf() {   # SAN KEYUSAGE
	cat >"$tmp/openssl.cnf" <<EOF
[req]
distinguished_name = dn
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_host]
basicConstraints = critical, CA:FALSE
keyUsage = critical, $2
extendedKeyUsage = serverAuth
subjectAltName = $1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
}

make_ca() {
	type=${ktype:-ecdsa}
	host=$(hostname 2>/dev/null | tr -cd 'A-Za-z0-9.-' | cut -c1-40)
	dir_temp ca.key; key_t=$dt
	dir_temp ca.crt; crt_t=$dt
	make_key "$type" "$key_t"
	ossl req -x509 -new -key "$key_t" -config "$tmp/openssl.cnf" -extensions v3_ca \
		-subj "/O=postern/CN=postern local CA ${host:-host}" -days "$CA_DAYS" -sha256 \
		-set_serial "$(serial)" -out "$crt_t" || die "could not make the CA certificate"
	chmod 644 "$crt_t"
	mv -f "$key_t" "$dir/ca.key"
	mv -f "$crt_t" "$dir/ca.crt"
	say "created the local CA $dir/ca.crt ($(keydesc "$dir/ca.crt" cert), valid until $(enddate "$dir/ca.crt")); clients should trust this file"
}

check_ca() {
	[ -f "$dir/ca.key" ] || die "$dir/ca.crt exists but $dir/ca.key does not: move ca.crt away to make a new CA"
	[ -f "$dir/ca.crt" ] || die "$dir/ca.key exists but $dir/ca.crt does not: move ca.key away to make a new CA"
	key_matches "$dir/ca.key" "$dir/ca.crt" ||
		die "$dir/ca.key does not match $dir/ca.crt (or cannot be read)"
	openssl x509 -in "$dir/ca.crt" -noout -checkend "$RENEW_SECONDS" >/dev/null 2>&1 ||
		die "the local CA $dir/ca.crt expires on $(enddate "$dir/ca.crt"): move ca.crt and ca.key away to make a new one (clients must then trust the new ca.crt)"
	say "kept the local CA $dir/ca.crt (valid until $(enddate "$dir/ca.crt"))"
}

make_host() {   # reason
	type=${ktype:-ecdsa}
	dir_temp postern.key; key_t=$dt
	dir_temp postern.crt; crt_t=$dt
	make_key "$type" "$key_t"
	ossl req -new -key "$key_t" -config "$tmp/openssl.cnf" -subj "/CN=$cn" \
		-out "$tmp/host.csr" || die "could not make the certificate request"
	ossl x509 -req -in "$tmp/host.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
		-set_serial "$(serial)" -days "$HOST_DAYS" -sha256 \
		-extfile "$tmp/openssl.cnf" -extensions v3_host -out "$crt_t" ||
		die "could not sign the host certificate"
	chmod 644 "$crt_t"
	# The key first: a connection in between sees the new key with the old
	# certificate for an instant and is refused; it never sees a half-written file.
	mv -f "$key_t" "$dir/postern.key"
	mv -f "$crt_t" "$dir/postern.crt"
	say "$1 $dir/postern.crt for $names_shown ($(keydesc "$dir/postern.crt" cert), valid until $(enddate "$dir/postern.crt")), key $dir/postern.key"
}

# --- issue mode ------------------------------------------------------------------------
issue() {
	[ $# -ge 1 ] || { usage >&2; exit 2; }
	san=
	seen=' '
	names_shown=
	cn=
	for name in "$@"; do
		kind=$(classify "$name") || die "not a host name or IP address: '$name'"
		if [ "$kind" = dns ]; then
			name=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')
			entry="DNS:$name"
		else
			entry="IP:$name"
		fi
		case $seen in *" $name "*) continue ;; esac
		seen="$seen$name "
		san="${san:+$san,}$entry"
		names_shown="${names_shown:+$names_shown, }$name"
		if [ -z "$cn" ]; then cn=$name; fi
	done
	# CN is at most 64 characters (RFC 5280); clients use the subjectAltName anyway.
	[ ${#cn} -le 64 ] || cn=postern
	case ${ktype:-ecdsa} in
	rsa) usage_ext='digitalSignature, keyEncipherment' ;;
	*) usage_ext='digitalSignature' ;;
	esac
	write_cnf "$san" "$usage_ext"

	if [ ! -d "$dir" ]; then
		(umask 022 && mkdir -p "$dir") || die "cannot create $dir"
		chmod 755 "$dir"
	fi
	[ -w "$dir" ] || die "cannot write to $dir (run as root?)"

	if [ -e "$dir/ca.crt" ] || [ -e "$dir/ca.key" ]; then
		check_ca
	else
		make_ca
	fi

	if [ ! -e "$dir/postern.crt" ] && [ ! -e "$dir/postern.key" ]; then
		make_host issued
		return 0
	fi

	# An existing host certificate: keep it if it is fine, else say why it is renewed.
	crt=$dir/postern.crt
	reason=
	if [ ! -f "$crt" ] || [ ! -f "$dir/postern.key" ]; then
		reason="the certificate or its key was missing"
	elif ! openssl x509 -in "$crt" -noout >/dev/null 2>&1; then
		reason="the old one could not be read"
	elif ! key_matches "$dir/postern.key" "$crt"; then
		reason="the old key did not match it"
	fi
	ours=yes
	if [ -z "$reason" ] && ! openssl verify -CAfile "$dir/ca.crt" -purpose sslserver "$crt" >/dev/null 2>&1; then
		case $(openssl x509 -in "$crt" -noout -issuer 2>/dev/null) in
		*"postern local CA"*) reason="it was issued by an earlier local CA" ;;
		*) ours=no ;;
		esac
	fi
	if [ -z "$reason" ]; then
		if ! openssl x509 -in "$crt" -noout -checkend "$RENEW_SECONDS" >/dev/null 2>&1; then
			reason="the old one expires on $(enddate "$crt")"
		else
			# The wanted names as openssl prints them: a request with the same SAN.
			ossl req -new -key "$dir/postern.key" -config "$tmp/openssl.cnf" -subj /CN=x \
				-addext "subjectAltName=$san" -out "$tmp/want.csr" ||
				die "could not check the names"
			san_list req "$tmp/want.csr" >"$tmp/want.san"
			san_list x509 "$crt" >"$tmp/have.san"
			if ! cmp -s "$tmp/want.san" "$tmp/have.san"; then
				reason="the names changed"
			elif [ -n "$ktype" ] && [ "$(certtype "$crt")" != "$ktype" ]; then
				reason="the key type changed to $ktype"
			fi
		fi
	fi
	if [ -z "$reason" ]; then
		if [ "$ours" = yes ]; then
			say "kept $crt: still valid until $(enddate "$crt") for the same names ($names_shown)"
		else
			say "kept $crt (not issued by the local CA): valid until $(enddate "$crt") for the same names ($names_shown)"
		fi
		return 0
	fi
	if [ "$ours" = no ] && [ "$force" = 0 ]; then
		die "$crt was not issued by the local CA (an installed certificate?) and $reason; not replacing it: use -f to replace it, or --install a new one"
	fi
	make_host "renewed ($reason):"
}

# --- install mode ----------------------------------------------------------------------
install_cert() {
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage >&2; exit 2; fi
	cert=$1
	key=$2
	chain=${3-}
	for f in "$cert" "$key" ${chain:+"$chain"}; do
		if [ ! -f "$f" ] || [ ! -r "$f" ]; then die "cannot read $f"; fi
	done
	grep -q -e '-----BEGIN CERTIFICATE-----' "$cert" ||
		die "$cert holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
	ossl crl2pkcs7 -nocrl -certfile "$cert" -out /dev/null ||
		die "$cert: a certificate in it cannot be parsed"
	if [ -n "$chain" ]; then
		grep -q -e '-----BEGIN CERTIFICATE-----' "$chain" ||
			die "$chain holds no PEM certificate"
		ossl crl2pkcs7 -nocrl -certfile "$chain" -out /dev/null ||
			die "$chain: a certificate in it cannot be parsed"
	fi
	# The key: readable, not encrypted, and the one of the (first) certificate.
	openssl pkey -in "$key" -passin pass: -out "$tmp/key.pem" 2>/dev/null ||
		die "$key is not a readable private key, or it is encrypted (the daemons need an unencrypted key)"
	key_matches "$tmp/key.pem" "$cert" ||
		die "the key $key does not match the certificate $cert: nothing installed"
	openssl x509 -in "$cert" -noout -checkend 0 >/dev/null 2>&1 ||
		die "$cert expired on $(enddate "$cert"): nothing installed"
	if ! openssl x509 -in "$cert" -noout -checkend "$RENEW_SECONDS" >/dev/null 2>&1; then
		printf '%s: warning: %s expires soon, on %s\n' "$prog" "$cert" "$(enddate "$cert")" >&2
	fi

	# Only the certificate blocks, leaf first, without CRs or text between them.
	sed -n '/^-----BEGIN CERTIFICATE-----/,/^-----END CERTIFICATE-----/p' \
		"$cert" ${chain:+"$chain"} | tr -d '\r' >"$tmp/full.pem"
	ncerts=$(grep -c -e '-----BEGIN CERTIFICATE-----' "$tmp/full.pem")
	issuer=$(openssl x509 -in "$cert" -noout -issuer 2>/dev/null | sed 's/^issuer=//')
	subject=$(openssl x509 -in "$cert" -noout -subject 2>/dev/null | sed 's/^subject=//')
	if [ "$ncerts" -eq 1 ] && [ "$issuer" != "$subject" ]; then
		printf '%s: warning: no chain: clients may not trust %s without the intermediate certificates (give the fullchain file, or CHAIN)\n' "$prog" "$cert" >&2
	fi

	if [ ! -d "$dir" ]; then
		(umask 022 && mkdir -p "$dir") || die "cannot create $dir"
		chmod 755 "$dir"
	fi
	[ -w "$dir" ] || die "cannot write to $dir (run as root?)"
	dir_temp postern.key; key_t=$dt
	dir_temp postern.crt; crt_t=$dt
	cat "$tmp/key.pem" >"$key_t"
	chmod 600 "$key_t"
	cat "$tmp/full.pem" >"$crt_t"
	chmod 644 "$crt_t"
	mv -f "$key_t" "$dir/postern.key"
	mv -f "$crt_t" "$dir/postern.crt"
	names=$(san_list x509 "$dir/postern.crt" | sed 's/^[a-z]*://' | tr '\n' ' ' | sed 's/ $//; s/ /, /g')
	say "installed $cert as $dir/postern.crt (leaf + $((ncerts - 1)) chain certificate(s); ${names:-no subjectAltName}; valid until $(enddate "$dir/postern.crt"))"
	say "installed the key as $dir/postern.key (0600, $(keydesc "$dir/postern.key" key))"
}

# --- command line ----------------------------------------------------------------------
while [ $# -gt 0 ]; do
	case $1 in
	-d) [ $# -ge 2 ] || die "-d needs a directory"; dir=$2; shift 2 ;;
	-t) [ $# -ge 2 ] || die "-t needs ecdsa or rsa"; ktype=$2; shift 2 ;;
	-f) force=1; shift ;;
	--install) mode=install; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-?*) usage >&2; die "unknown option $1" ;;
	*) break ;;
	esac
done
case $ktype in
''|ecdsa|rsa) ;;
*) die "-t takes ecdsa or rsa, not '$ktype'" ;;
esac
[ -n "$dir" ] || die "-d needs a directory"
case $dir in /*) ;; *) dir=$(pwd)/$dir ;; esac
command -v openssl >/dev/null 2>&1 || die "the openssl command is missing (apt-get install openssl)"

if [ "$mode" = install ]; then
	[ -z "$ktype" ] || die "-t does not apply to --install"
	install_cert "$@"
else
	issue "$@"
fi
