#!/bin/sh
# Index benchmarks.  1) Format: needs libsqlite3-dev and liblmdb-dev (not build
# dependencies of postern; install them by hand to run it).  2) Memory of postern's index
# at 100,000 and 1,000,000 messages (bench_mem.c, against the tree's libindex.a; with
# BEFORE=DIR also against the libindex.a of another tree, e.g. an older commit's build).
# Usage: sh bench/index/run.sh [DIR]   (MEM_ONLY=1: only the memory part)
set -e
cd "$(dirname "$0")/../.."
mkdir -p build/bench
dir=${1:-$(mktemp -d /var/tmp/postern-bench-index.XXXXXX)}
if [ -z "$MEM_ONLY" ]; then
	cc -O2 -o build/bench/bench_index bench/index/bench_index.c -lsqlite3 -llmdb
	build/bench/bench_index "$dir"
fi
make -s build/rel/libindex.a build/rel/libbase.a
cc -std=gnu17 -O2 -Icommon -o build/bench/bench_mem bench/index/bench_mem.c \
	build/rel/libindex.a build/rel/libbase.a
if [ -n "$BEFORE" ]; then
	cc -std=gnu17 -O2 -I"$BEFORE/common" -o build/bench/bench_mem_before \
		bench/index/bench_mem.c "$BEFORE/build/rel/libindex.a" "$BEFORE/build/rel/libbase.a"
fi
for n in 100000 1000000; do
	if [ -n "$BEFORE" ]; then
		echo "before ($BEFORE):"
		build/bench/bench_mem_before "$dir/mem-before-$n" "$n"
	fi
	build/bench/bench_mem "$dir/mem-$n" "$n"
done
rm -rf "$dir"
