#!/bin/sh
# Index format benchmark: needs libsqlite3-dev and liblmdb-dev (not build dependencies
# of postern; install them by hand to run this).  Usage: sh bench/index/run.sh [DIR]
set -e
cd "$(dirname "$0")/../.."
mkdir -p build/bench
cc -O2 -o build/bench/bench_index bench/index/bench_index.c -lsqlite3 -llmdb
dir=${1:-$(mktemp -d /var/tmp/postern-bench-index.XXXXXX)}
build/bench/bench_index "$dir"
rm -rf "$dir"
