#!/bin/bash
# Prints failed tests and the closing "N passed, N failed" line from the
# automake .trs files and the step results under DIR; exits 1 on any
# failure or when nothing ran.
dir=${1:-build}
trs=$(find "$dir/check" -name '*.trs' 2>/dev/null)
passed=0 failed=0 skipped=0
if [ -n "$trs" ]; then
	read -r p f s < <(cat $trs | awk '
		/^:test-result: (PASS|XFAIL)/ { p++ }
		/^:test-result: (FAIL|XPASS|ERROR)/ { f++ }
		/^:test-result: SKIP/ { s++ }
		END { print p+0, f+0, s+0 }')
	passed=$p failed=$f skipped=$s
	grep -l '^:test-result: \(FAIL\|XPASS\|ERROR\)' $trs | sed 's/\.trs$/.log/;s/^/failed: see /'
fi
if [ -f "$dir/results.txt" ]; then
	grep '^FAIL' "$dir/results.txt" | sed 's/^FAIL /failed: /'
	passed=$((passed + $(grep -c '^PASS' "$dir/results.txt")))
	failed=$((failed + $(grep -c '^FAIL' "$dir/results.txt")))
fi
[ "$skipped" -eq 0 ] || echo "skipped: $skipped (a skip counts as a failure to look at)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
