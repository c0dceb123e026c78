#!/bin/bash
# The benchmark suite in one command: builds the sidecar and the bench
# programs without sanitizers (-O2) in build/bench, runs the codec and
# store micro-benchmarks and bench/suite (its own nats-server, JetStream
# file storage on loopback, a temporary store; every case; everything
# stopped at the end), and prints the tables. Machine-readable results:
# build/bench/results.json (the suite) and build/bench/micro.tsv (the
# micro-benchmarks).
#
#   bench/run.sh [-n MSGS] [-r RUNS] [-c CASE,...] [-l SECONDS] [--smoke]
#
# Defaults: 200,000 messages, 3 runs, every case, latency phases of 15 s.
# The options are bench/suite's (see the top of bench/suite.c). JOBS sets
# make's parallelism (default 2); the build runs under nice.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/bench
jobs=${JOBS:-2}

cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
mkdir -p "$out"
cd "$out"
[ -f Makefile ] || "$top"/configure -q CFLAGS="-O2 -g"
nice make -s -j"$jobs" nats-sidecar bench/suite bench/codec bench/store \
	proto/events.desc

{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm)," \
		"$(nproc) cores: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo |
			head -1)"
	./bench/codec -m "$top/examples/mappings/orders-v1-to-v2.yaml"
	./bench/store
} | tee micro.txt
# micro.tsv: figure, value, unit.
awk '
	$1 == "protobuf" || $1 == "json" {
		printf "%s_decode\t%s\tus\n%s_encode\t%s\tus\n", $1, $2, $1, $3
		printf "%s_view_field\t%s\tus\n", $1, $4
	}
	/^v1-json-to-v2-protobuf/ {
		printf "translate_map\t%s\tus\ntranslate_whole\t%s\tus\n", $2, $3
	}
	/^digest/ { printf "dedup_digest\t%s\tus\n", $(NF - 1) }
	/^durability/ {
		sub(",", "", $2)
		printf "store_%s_batch%s\t%s\tkeys/s\n", $2, $4, $5
	}' micro.txt >micro.tsv

export top_builddir=$out top_srcdir=$top
echo
./bench/suite -j results.json "$@"
echo
echo "results: $out/results.json, $out/micro.tsv"
