#!/usr/bin/env bash
# tests/run.sh - runs every unit test (Check programs) and every integration
# test (Python unittest files), each bounded in time, and ends with exactly
# one line "N passed, N failed, N skipped"; exit status 0 only when nothing
# failed. Called by `make test` and `make sanitize`; tests/selftest checks it.
#
# Verdict rules. A file fails (and counts at least one failure) when it:
# exits non-zero or is killed by a signal or the timeout, even after a
# summary saying 100%; prints no summary (Check) or leaves no verdicts
# (unittest); runs 0 tests. A skip is never a pass: Check has no skip, so a
# unit test says `SKIP: <test>: <reason>` on stdout (tests/unit/unit_skip.h)
# and that check moves from the passes to the skips; a unittest skip counts
# as a skip. Every skip is listed with its reason. A unittest test fails when
# it or any of its subtests fails; an expected failure or an unexpected
# success is a failure (tests/unittest_verdicts.py).
#
# Environment: BUILD, BIN; UNIT_DIR (Check programs test_*, default
# $BUILD/tests) and INTEG_DIR (test_*.py, default tests/integration), either
# set to "" to leave that part out; TESTS, names of test files to run alone
# (test_mx test_intake_relay: each must exist); UNIT_TIMEOUT, INTEG_TIMEOUT
# (seconds); SANITIZE_LOG_DIR (make sanitize).
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
BUILD=${BUILD:-build}
export BIN=${BIN:-bin}
PY=/usr/bin/python3
UNIT_DIR=${UNIT_DIR-$BUILD/tests}
INTEG_DIR=${INTEG_DIR-tests/integration}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
INTEG_TIMEOUT=${INTEG_TIMEOUT:-600}
TESTS=${TESTS:-}
passed=0
failed=0
skipped=0
failures=()
skips=()
SCRATCH=$(mktemp -d /tmp/run.sh.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
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

# How a program run under timeout(1) ended, from its exit status.
ended() {
	case $1 in
	124) echo "timed out after $2s" ;;
	12[5-7]) echo "could not be run (status $1)" ;;
	*) [ "$1" -gt 128 ] && echo "killed by signal $(($1 - 128))" || echo "exit status $1" ;;
	esac
}

# record NAME PASSED FAILED SKIPPED WHY SECONDS: adds one file's counts.
record() {
	passed=$((passed + $2))
	failed=$((failed + $3))
	skipped=$((skipped + $4))
	echo "$1: $2 passed, $3 failed, $4 skipped in $6s${5:+ - $5}"
	[ "$3" -eq 0 ] || failures+=("$1")
}

# One Check program. Its summary line(s): "N%: Checks: C, Failures: F, Errors: E".
run_unit() {
	local t=$1 name out rc start sum c=0 f=0 e=0 p s=0 why="" line test
	name=$(basename "$t")
	start=$(date +%s)
	out=$(timeout -k 10 "$UNIT_TIMEOUT" "$t" 2>&1)
	rc=$?
	sum=$(printf '%s\n' "$out" | sed -n 's/^[0-9]*%: Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\)$/\1 \2 \3/p')
	while read -r line; do
		[ -n "$line" ] || continue
		set -- $line
		c=$((c + $1)) f=$((f + $2)) e=$((e + $3))
	done <<<"$sum"
	# A skipped test that then failed (its teardown: "S") is a failure, not a skip.
	while IFS= read -r line; do
		test=${line#SKIP: }
		test=${test%%: *}
		if printf '%s\n' "$out" | grep -qE ":[FES]:[^:]*:$test:[0-9]+:"; then continue; fi
		s=$((s + 1))
		skips+=("$name: ${line#SKIP: }")
	done < <(printf '%s\n' "$out" | grep -E '^SKIP: [^:]+: ')
	p=$((c - f - e - s))
	f=$((f + e))
	if [ -z "$sum" ]; then
		why="no Check summary"
		p=0 f=$((f + 1))
	elif [ "$c" -eq 0 ]; then
		why="ran 0 tests"
		f=$((f + 1))
	elif [ "$p" -lt 0 ]; then
		why="more SKIP lines than passing checks"
		p=0 f=$((f + 1))
	fi
	if [ $rc -ne 0 ]; then
		why="${why:+$why; }$(ended $rc "$UNIT_TIMEOUT")"
		[ "$f" -gt 0 ] || f=1
	fi
	record "$name" "$p" "$f" "$s" "$why" $(( $(date +%s) - start ))
	# Check's failure lines, else the end of the output (a crash, a hang).
	if [ "$f" -gt 0 ]; then
		line=$(printf '%s\n' "$out" | grep -E '^[^ ]+:[0-9]+:[FES]:' | head -30)
		[ -n "$line" ] || line=$(printf '%s\n' "$out" | grep -vE '^[0-9]+%: Checks' | tail -20)
		printf '%s\n' "$line" | sed 's/^/    /'
	fi
	san_check "$name"
}

# One unittest file, through tests/unittest_verdicts.py.
run_py() {
	local t=$1 name out rc start v p=0 f=0 s=0 why="" line
	name=$(basename "$t" .py)
	v=$SCRATCH/$name.verdicts
	start=$(date +%s)
	out=$(cd "$(dirname "$t")" && timeout -k 10 "$INTEG_TIMEOUT" $PY "$TOP/tests/unittest_verdicts.py" "$name" "$v" 2>&1)
	rc=$?
	if [ -f "$v" ]; then
		p=$(grep -c '^pass ' "$v")
		f=$(grep -c '^fail ' "$v")
		s=$(grep -c '^skip ' "$v")
		while IFS= read -r line; do skips+=("$name: ${line#skip }"); done < <(grep '^skip ' "$v")
		[ $((p + f + s)) -gt 0 ] || { why="ran 0 tests"; f=1; }
	else
		why="no verdicts: the run did not finish"
		f=1
	fi
	if [ $rc -ne 0 ]; then
		why="${why:+$why; }$(ended $rc "$INTEG_TIMEOUT")"
		[ "$f" -gt 0 ] || f=1
	fi
	record "$name" "$p" "$f" "$s" "$why" $(( $(date +%s) - start ))
	if [ "$f" -gt 0 ]; then
		[ -f "$v" ] && grep '^fail ' "$v" | cut -c1-300 | sed 's/^/    /'
		printf '%s\n' "$out" | grep -E '^(FAIL|ERROR):|Error|assert' | head -30 | sed 's/^/    /'
		[ -f "$v" ] || printf '%s\n' "$out" | tail -20 | sed 's/^/    /'
	fi
	san_check "$name"
}

# A part that is asked for but holds no tests is a failure, not an empty pass.
ran=" "
run_part() {
	local dir=$1 kind=$2 t n=0 name
	[ -n "$dir" ] || return 0
	for t in "$dir"/test_*; do
		case "$t" in *.o|*.d|*.pyc) continue ;; esac
		name=$(basename "$t" .py)
		[ -z "$TESTS" ] || [[ " $TESTS " == *" $name "* ]] || continue
		if [ "$kind" = unit ]; then
			[ -f "$t" ] && [ -x "$t" ] || continue
			run_unit "$t"
		else
			case "$t" in *.py) [ -f "$t" ] || continue ;; *) continue ;; esac
			run_py "$t"
		fi
		n=$((n + 1))
		ran+="$name "
	done
	[ $n -gt 0 ] || [ -n "$TESTS" ] || record "$dir" 0 1 0 "no $kind tests found there" 0
}

run_part "$UNIT_DIR" unit
run_part "$INTEG_DIR" integration
for name in $TESTS; do
	[[ "$ran" == *" $name "* ]] || record "$name" 0 1 0 "no such test file" 0
done
[ -n "$SAN_DIR" ] && echo "sanitizer reports: $(find "$SAN_DIR/seen" -type f | wc -l) (in $SAN_DIR/seen)"

for line in "${skips[@]}"; do echo "skipped: $line"; done
[ ${#failures[@]} -gt 0 ] && echo "failing: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
