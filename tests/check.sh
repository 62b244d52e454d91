#!/bin/sh
# make check: every test, in one run, ending with one "N passed, N failed" line.
#   1. unit tests (release build)          2. unit tests under ASan + UBSan
#   3. fuzz smoke runs (libFuzzer)          4. integration tests (release ipop3d, imapd,
#                                              smtp-submit)
#   5. integration tests again with the ASan + UBSan ipop3d, imapd and smtp-submit
cd "$(dirname "$0")/.." || exit 1
log=build/check.log
mkdir -p build
: > "$log"
status=0
run() {
	name=$1; shift
	echo "== $name"
	if ! "$@" > build/step.out 2>&1; then status=1; echo "-- $name: FAILED"; fi
	cat build/step.out
	cat build/step.out >> "$log"
}
sh tests/mkuser.sh || status=1
run "layers" make -s layers
run "build" make -s all
run "unit" make -s unit
run "unit (ASan+UBSan)" make -s SAN=1 unit
# the storage test at the size the index is built for (make unit uses 100,000: ~2 min)
run "storage, 1,000,000 messages" env POSTERN_TEST_MESSAGES=1000000 build/rel/tests/unit/storage/test_storage
run "fuzz smoke" make -s fuzz-smoke
run "build (ASan+UBSan)" make -s SAN=1 build/san/ipop3d/ipop3d build/san/imapd/imapd \
	build/san/smtp-submit/smtp-submit
run "integration" sh tests/run-integ.sh
POSTERN_IPOP3D=build/san/ipop3d/ipop3d POSTERN_IMAPD=build/san/imapd/imapd \
POSTERN_SMTP_SUBMIT=build/san/smtp-submit/smtp-submit POSTERN_SAN=1 \
	run "integration (ASan+UBSan)" sh tests/run-integ.sh
# Sum every "N passed, N failed" (our runners) and pytest's summary lines.
awk '
/[0-9]+ passed, [0-9]+ failed$/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } next }
/[0-9]+ (passed|failed|errors?).* in [0-9.]+s/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^(failed|errors?)/) f += $i } }
END { printf "check: %d passed, %d failed\n", p, f; exit (f > 0) }
' "$log" || status=1
exit $status
