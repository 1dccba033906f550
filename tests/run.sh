#!/usr/bin/env bash
# tests/run.sh - runs every unit test (Check programs) and every integration
# test (Python unittest files, each bounded in time), then prints one
# closing line "N passed, N failed". Called by `make test` and `make sanitize`.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BIN=${BIN:-bin}
PY=/usr/bin/python3
passed=0
failed=0
failures=()
# make sanitize: every process writes its sanitizer reports to files in
# SANITIZE_LOG_DIR; each file that appears during a test fails that test.
SAN_DIR=${SANITIZE_LOG_DIR:-}

san_check() {
	[ -n "$SAN_DIR" ] || return 0
	local f n=0
	mkdir -p "$SAN_DIR/seen"
	for f in "$SAN_DIR"/*; do
		[ -f "$f" ] || continue
		echo "$1: sanitizer report $(basename "$f"):"
		head -60 "$f" | sed 's/^/    /'
		mv "$f" "$SAN_DIR/seen/$1.$(basename "$f")"
		n=$((n + 1))
	done
	[ $n -eq 0 ] && return 0
	failed=$((failed + n))
	[ "${failures[-1]:-}" = "$1" ] || failures+=("$1")
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	case "$t" in *.o|*.d) continue ;; esac
	out=$(timeout 300 "$t" 2>&1)
	rc=$?
	echo "$out" | grep -E '^[0-9]+%: Checks' | sed "s|^|$(basename "$t"): |"
	n=$(echo "$out" | sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p' | tail -1)
	if [ -n "$n" ]; then
		set -- $n
		passed=$((passed + $1 - $2 - $3))
		failed=$((failed + $2 + $3))
	fi
	if [ $rc -ne 0 ]; then
		[ -z "$n" ] && failed=$((failed + 1))
		failures+=("$(basename "$t")")
		echo "$out" | grep -vE '^[0-9]+%: Checks' | tail -20
	fi
	san_check "$(basename "$t")"
done

for t in tests/integration/test_*.py; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .py)
	start=$(date +%s)
	out=$(cd tests/integration && timeout 600 $PY -m unittest -v "$name" 2>&1)
	rc=$?
	ran=$(echo "$out" | sed -n 's/^Ran \([0-9]*\) tests\{0,1\}.*/\1/p' | tail -1)
	bad=$(echo "$out" | sed -n 's/^FAILED (\(.*\))/\1/p' | grep -oE '(failures|errors)=[0-9]+' | cut -d= -f2 | awk '{s+=$1} END {print s+0}')
	ran=${ran:-0}
	bad=${bad:-0}
	if [ $rc -ne 0 ] && [ "$bad" = 0 ]; then bad=1; ran=$((ran > 0 ? ran : 1)); fi
	passed=$((passed + ran - bad))
	failed=$((failed + bad))
	echo "$name: $((ran - bad))/$ran passed in $(( $(date +%s) - start ))s"
	if [ $rc -ne 0 ]; then
		failures+=("$name")
		echo "$out" | grep -E '^(FAIL|ERROR):|Error|assert' | head -30
	fi
	san_check "$name"
done
[ -n "$SAN_DIR" ] && echo "sanitizer reports: $(find "$SAN_DIR/seen" -type f | wc -l) (in $SAN_DIR/seen)"

[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
