#!/bin/bash
# Profiles the sidecar with callgrind while bench/suite drives it:
#
#   bench/profile.sh [CASE [MSGS]]      # default: sidecar-bare 20000
#
# Needs valgrind (Debian package valgrind) and a build from bench/run.sh
# in build/bench. The suite starts "nats-sidecar" from $top_builddir, so
# a directory holding a wrapper of that name runs the real one under
# callgrind. Writes build/bench/callgrind.out.PID (one file per sidecar
# started: the throughput phase is the first) and prints the costliest
# functions, inclusive, of the throughput phase.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/bench
case=${1:-sidecar-bare}
n=${2:-20000}
wrap=$(mktemp -d)
trap 'rm -rf "$wrap"' EXIT

[ -x "$out/nats-sidecar" ] && [ -x "$out/bench/suite" ] ||
	{ echo "profile.sh: run bench/run.sh first" >&2; exit 1; }
cat >"$wrap/nats-sidecar" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$out/callgrind.out.%p \\
	$out/nats-sidecar "\$@"
EOF
chmod +x "$wrap/nats-sidecar"
# The translating cases read the build's descriptor set there too.
ln -s "$out/proto" "$wrap/proto"
rm -f "$out"/callgrind.out.*
cd "$out"
top_srcdir=$top top_builddir=$wrap ./bench/suite -n "$n" -r 1 -l 0.2 -c "$case"
first=$(ls -tr "$out"/callgrind.out.* | head -1)
echo
echo "profile: $first"
callgrind_annotate --inclusive=yes "$first" | head -60
