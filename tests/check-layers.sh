#!/bin/sh
# The libraries of common/ form a stack: each includes only from itself and the libraries
# the Makefile lets it use (LIBDEPS_*), and a library's unit tests and fuzz targets only
# from those.  Arguments: lib:dep+dep+... for every library (make layers passes them).
# Prints one line per violation and ends with "layers: N passed, N failed".
cd "$(dirname "$0")/.." || exit 1
pass=0 fail=0
for spec in "$@"; do
	lib=${spec%%:*}
	allowed=" $(echo "${spec#*:}" | tr + ' ') "
	for f in common/"$lib"/*.[ch] tests/unit/"$lib"/*.c fuzz/"$lib"/*.c; do
		[ -f "$f" ] || continue
		bad=0
		# every project include names its library: #include "lib/file.h"
		for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
			case $inc in
			unit.h) case $f in tests/unit/*) continue ;; esac ;;
			esac
			dep=${inc%%/*}
			if [ "$dep" = "$inc" ] || [ ! -d "common/$dep" ]; then
				echo "layers: $f includes \"$inc\", which names no library"
				bad=1
			elif ! printf '%s' "$allowed" | grep -q " $dep "; then
				echo "layers: $f ($lib) includes \"$inc\" from $dep, not below $lib"
				bad=1
			fi
		done
		if [ $bad -eq 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
	done
done
# Every library folder is known to the Makefile.
for d in common/*/; do
	d=${d%/}; d=${d#common/}
	case " $* " in *" $d:"*) ;; *) echo "layers: common/$d is not in LIBDIRS"; fail=$((fail + 1)) ;; esac
done
echo "layers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
