#!/bin/sh
# The integration tests of ipop3d: real launchers (systemd-socket-activate, openbsd-inetd),
# real PAM against throwaway system accounts, real clients (poplib, curl, openssl).
# Runs as root.  POSTERN_IPOP3D, POSTERN_IMAPD, POSTERN_SMTP_SUBMIT: the binaries under
# test (default ipop3d/ipop3d, imapd/imapd, smtp-submit/smtp-submit), e.g.
#   POSTERN_IPOP3D=build/san/ipop3d/ipop3d POSTERN_IMAPD=build/san/imapd/imapd \
#   POSTERN_SMTP_SUBMIT=build/san/smtp-submit/smtp-submit sh tests/run-integ.sh
# Extra arguments go to pytest (e.g. -k throttle, -x).  The last line is pytest's summary.
cd "$(dirname "$0")/.." || exit 1
: "${POSTERN_IPOP3D:=ipop3d/ipop3d}"
: "${POSTERN_IMAPD:=imapd/imapd}"
: "${POSTERN_SMTP_SUBMIT:=smtp-submit/smtp-submit}"
export POSTERN_IPOP3D POSTERN_IMAPD POSTERN_SMTP_SUBMIT
# Debian's python3 with python3-pytest, whatever python3 is first in PATH.
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 -m pytest -q -p no:cacheprovider -o console_output_style=classic \
	tests/integ "$@"
