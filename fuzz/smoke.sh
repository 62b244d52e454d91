#!/bin/sh
# A short run of every fuzz target on its seed corpus (make fuzz-smoke, part of make
# check).  Longer runs: build/fuzz/fuzz_X -max_total_time=600 fuzz/corpus/fuzz_X
secs=${FUZZ_SECONDS:-8}
pass=0 fail=0
for bin in "$@"; do
	name=$(basename "$bin")
	corpus=fuzz/corpus/$name
	work=$(mktemp -d)
	[ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
	dict=""
	for d in fuzz/*/"$name.dict"; do [ -f "$d" ] && dict="-dict=$d"; done
	if "$bin" -max_total_time="$secs" -rss_limit_mb=1024 -timeout=10 $dict \
		-artifact_prefix="build/fuzz/$name-" "$work" >"build/fuzz/$name.log" 2>&1; then
		echo "fuzz $name: ok"
		pass=$((pass + 1))
	else
		echo "fuzz $name: FAILED (see build/fuzz/$name.log)"
		tail -20 "build/fuzz/$name.log"
		fail=$((fail + 1))
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
