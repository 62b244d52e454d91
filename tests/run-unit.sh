#!/bin/sh
# Run every unit test binary given; each prints "name: N passed, N failed".
fail=0
for t in "$@"; do
	if ! "$t"; then
		echo "unit $(basename "$t"): FAILED"
		fail=1
	fi
done
exit $fail
