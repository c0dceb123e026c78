#!/bin/bash
# The whole test suite, from a fresh clone: installs what is missing,
# builds with -Werror, ASan and UBSan, runs `make check` (unit and
# integration tests against a real nats-server), the format check, every
# fuzz target for a bounded time and `make distcheck`, then prints
# "N passed, N failed" counted from the real results.
#
# Environment: FUZZ_SECONDS (per fuzz target, default 20), JOBS (default:
# the number of cores), SKIP_DISTCHECK=1 / SKIP_FUZZ=1 for quicker local
# runs.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
jobs=${JOBS:-$(nproc)}
fuzz_seconds=${FUZZ_SECONDS:-20}
results=$top/build/results.txt

step() { printf '\n=== %s\n' "$*"; }
# Records one pass/fail line for a step that is not a TAP test.
record() { echo "$1 $2" >>"$results"; }

step "dependencies"
bash tests/deps.sh || exit 1
[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi || exit 1
mkdir -p build
: >"$results"

step "build and check (ASan + UBSan, -Werror)"
rm -rf build/check
mkdir -p build/check
(cd build/check && ../../configure -q --enable-werror --enable-sanitizers &&
	make -j"$jobs" -s && make -j"$jobs" -s check)
check_rc=$?
[ $check_rc -eq 0 ] || record FAIL "make check (exit $check_rc)"

step "format"
if (cd build/check && make -s format-check); then record PASS format-check
else record FAIL format-check; fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
	step "fuzz targets, ${fuzz_seconds}s each (clang, libFuzzer)"
	rm -rf build/fuzz
	mkdir -p build/fuzz
	if (cd build/fuzz && CC=clang ../../configure -q --enable-fuzzing &&
		make -j"$jobs" -s fuzz-targets); then
		for f in build/fuzz/tests/fuzz/*-fuzz; do
			name=$(basename "$f" -fuzz)
			corpus=build/fuzz/corpus-$name
			rm -rf "$corpus"
			cp -r "tests/fuzz/corpus/$name" "$corpus"
			if "$f" -max_total_time="$fuzz_seconds" -timeout=10 \
				-rss_limit_mb=1024 -print_final_stats=1 "$corpus" \
				>"build/fuzz/$name.log" 2>&1; then
				record PASS "fuzz $name"
			else
				record FAIL "fuzz $name (see build/fuzz/$name.log)"
				tail -40 "build/fuzz/$name.log"
			fi
		done
	else
		record FAIL "fuzz build"
	fi
fi

if [ "${SKIP_DISTCHECK:-0}" != 1 ]; then
	step "distcheck"
	rm -rf build/dist
	mkdir -p build/dist
	if (cd build/dist && ../../configure -q && make -s -j"$jobs" distcheck \
		DISTCHECK_CONFIGURE_FLAGS=--enable-werror >distcheck.log 2>&1); then
		record PASS distcheck
	else
		record FAIL distcheck
		tail -30 build/dist/distcheck.log
		# The failing tests' own logs, which the summary only points to.
		grep -E '^(FAIL|ERROR|XPASS):' build/dist/distcheck.log
		find build/dist -name '*.log' -path '*/_build/*' \
			-exec grep -l -E '^(not ok|Bail out)' {} + 2>/dev/null |
			while read -r log; do
				printf -- '--- %s\n' "$log"
				tail -80 "$log"
			done
	fi
fi

step "summary"
bash tests/summary.sh build
