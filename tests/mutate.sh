#!/usr/bin/env bash
# tests/mutate.sh - the mutation check (`make mutate`, not part of `make
# test`). Each mutation below is a deliberate one-line break of the product;
# the test files listed with it must catch it (fail). They are applied one at
# a time to a scratch copy of the tree (never to the tree itself), which is
# built and tested with those files only (run.sh TESTS=...). A mutation whose
# text is not found exactly once, or that does not build, is an error, never
# a pass; so is a baseline (the unmutated copy) that does not pass.
#
# Usage: tests/mutate.sh [NAME...]   (default: every mutation)
# Prints a table: mutation, caught or NOT CAUGHT, and the failing test files
# with their failure counts. Exit status 0 only if every mutation was caught.
# The runner's output for each run is kept in $MUTATE_LOGS (build/mutate).
set -u
cd "$(dirname "$0")/.."
TOP=$PWD
PY=/usr/bin/python3
LOGS=${MUTATE_LOGS:-$TOP/build/mutate}

# name, file, exact text (must occur once), its replacement, test files
# that must catch it.
mutations=(
	relay-denied-5.7.0
	relayd/intake/smtp_reply.c
	'[SR_RELAY_DENIED] = {554, "5.7.1",'
	'[SR_RELAY_DENIED] = {554, "5.7.0",'
	"test_intake_relay test_intake_auth"

	syntax-5.5.4-to-5.0.0
	relayd/intake/smtp_reply.c
	'[SR_SYNTAX] = {501, "5.5.4",'
	'[SR_SYNTAX] = {501, "5.0.0",'
	"test_smtp_cmd test_intake_basic test_intake_auth"

	bad-sender-5.1.7-to-5.5.2
	relayd/intake/smtp_reply.c
	'[SR_BAD_SENDER] = {501, "5.1.7",'
	'[SR_BAD_SENDER] = {501, "5.5.2",'
	"test_smtp_path test_intake_paths test_intake_basic"

	backoff-no-doubling
	queue/queue_sched.c
	$'\t\td *= 2;'
	$'\t\td *= 1;'
	"test_queue_backoff test_queue_worker"

	mx-order-reversed
	resolver/mx_rank.c
	'return (x->pref > y->pref) - (x->pref < y->pref);'
	'return (x->pref < y->pref) - (x->pref > y->pref);'
	"test_mx test_resolver test_delivery_mx"

	dot-stuffing-dropped
	relayd/delivery/smtpc_stuff.c
	"if (s->bol && c == '.')"
	"if (s->bol && c == '.' && 0)"
	"test_dlv_stuff test_dlv_session test_delivery_mx"

	# The commit an END (or a delivery result) asks for is never made.
	# (Skipping only the flush at the end of the loop iteration is no
	# longer a fault: the 20 ms transaction timer commits instead.)
	group-commit-skipped
	queue/queue.c
	$'\tif (!queue_store_in_txn(q->st))\n\t\treturn 0;'
	$'\tif (!queue_store_in_txn(q->st) || q->want_commit)\n\t\treturn 0;'
	"test_queue_ipc test_queue_worker test_intake_basic"

	# COMMITTED told before the commit, which may then fail.
	committed-before-commit
	queue/queue.c
	$'\tif (queue_store_commit(q->st) < 0) {\n\t\tq->want_commit = 0;'
	$'\tqueue_in_committed(q);\n\tif (queue_store_commit(q->st) < 0) {\n\t\tq->want_commit = 0;'
	"test_queue_ipc test_queue_worker"

	sendmail-bcc-kept
	relayd/sendmail/sendmail_msg.c
	'if (kind != HDR_BCC && kind != HDR_RESENT_BCC)'
	'if (1)'
	"test_sendmail"

	local-received-uid-0
	relayd/intake/smtp_handoff.c
	'(unsigned)s->uid, tx->qid);'
	'0u, tx->qid);'
	"test_sendmail"

	maildrop-file-owner-only
	relayd/sendmail/maildrop.c
	'fchmod(fd, 0640)'
	'fchmod(fd, 0600)'
	"test_sendmail"

	maildrop-dir-listable
	relayd/master/master_statedir.c
	'drop, uid, gid, 03733,'
	'drop, uid, gid, 03777,'
	"test_sendmail"

	# Any local user may queue mail or take jobs on queue.sock.
	queue-sock-peercred-removed
	queue/queue.c
	'if (peercred_get(s, &pc) < 0 || pc.uid != geteuid()) {'
	'if (peercred_get(s, &pc) < 0 || (pc.uid != geteuid() && 0)) {'
	"test_privsep"

	# Two-phase reload, the master's side: a worker's refusal (or silence)
	# is not recorded, so the master commits anyway.
	reload-ignores-worker-refusal
	relayd/master/master_config.c
	$'\tif (r->reason[0] == \'\\0\')\n\t\tsnprintf(r->reason, sizeof(r->reason), "%s", why);'
	$'\tif (r->reason[0] == \'\\0\' && idx < 0)\n\t\tsnprintf(r->reason, sizeof(r->reason), "%s", why);'
	"test_reload"

	# Two-phase reload, a worker's side: ABORT taken as COMMIT.
	worker-commits-on-abort
	common/worker.c
	$'\tstruct worker *w = arg;\n\tif (ipc_msg_empty_decode(rd) < 0)\n\t\treturn -1;\n\tif (w->pending != NULL && w->on_abort)'
	$'\tstruct worker *w = arg;\n\tif (w->pending != NULL)\n\t\treturn worker_msg_commit(arg, rd);\n\tif (ipc_msg_empty_decode(rd) < 0)\n\t\treturn -1;\n\tif (w->pending != NULL && w->on_abort)'
	"test_worker_cfg test_reload"
)

# replace FILE OLD NEW: OLD must occur exactly once in FILE.
replace() {
	$PY - "$@" <<'EOF'
import sys
path, old, new = sys.argv[1:]
text = open(path).read()
if text.count(old) != 1:
    sys.exit("%s: the mutation's text occurs %d times, not once: %r" % (path, text.count(old), old))
open(path, "w").write(text.replace(old, new))
EOF
}

# run_tests NAME TESTS: run.sh on the scratch copy with TESTS; output in $LOGS/NAME.log.
# A file that hangs under a mutation is caught when its bound runs out; the
# bounds are several times the files' usual time (at most ~20 s), not run.sh's defaults.
run_tests() {
	(cd "$WORK/tree" && TESTS="$2" UNIT_TIMEOUT=${UNIT_TIMEOUT:-120} \
		INTEG_TIMEOUT=${INTEG_TIMEOUT:-150} bash tests/run.sh) >"$LOGS/$1.log" 2>&1
}

# Failing files and their counts, from a run.sh log.
failing_in() {
	sed -n 's/^\(test_[A-Za-z0-9_]*\): [0-9]* passed, \([1-9][0-9]*\) failed.*/\1 (\2 failed)/p' "$1" | paste -sd, - | sed 's/,/, /g'
}

build() {
	make -C "$WORK/tree" -s all unit-bins >"$LOGS/$1.build.log" 2>&1
}

wanted=" $* "
sel=()
for ((i = 0; i < ${#mutations[@]}; i += 5)); do
	[ $# -eq 0 ] || [[ "$wanted" == *" ${mutations[i]} "* ]] && sel+=("$i")
done
[ ${#sel[@]} -gt 0 ] || { echo "mutate.sh: no mutation named: $*"; exit 2; }

mkdir -p "$LOGS"
WORK=$(mktemp -d /tmp/mutate.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Some tests run relayctl and relayd's workers as another user (nobody).
chmod 755 "$WORK"
# The tree as it is now (tracked and new files), and its build to start from.
mkdir "$WORK/tree"
git ls-files -z -co --exclude-standard | tar -cf - --null -T - | tar -C "$WORK/tree" -xf - || exit 2
for d in build bin; do
	[ -d "$d" ] && tar -cf - --exclude=build/san --exclude=build/fuzz --exclude=build/mutate "$d" | tar -C "$WORK/tree" -xf -
done

all=""
for i in "${sel[@]}"; do
	for t in ${mutations[i + 4]}; do [[ " $all " == *" $t "* ]] || all+="$t "; done
done
echo "baseline (no mutation): building and running $all"
build baseline || { echo "baseline does not build: see $LOGS/baseline.build.log"; exit 2; }
if ! run_tests baseline "$all"; then
	echo "baseline fails, so a failure under a mutation would prove nothing:"
	tail -5 "$LOGS/baseline.log"
	exit 2
fi
tail -1 "$LOGS/baseline.log"

report=()
status=0
for i in "${sel[@]}"; do
	name=${mutations[i]} file=${mutations[i + 1]} list=${mutations[i + 4]}
	echo "mutation $name ($file): running $list"
	cp "$WORK/tree/$file" "$WORK/orig"
	if ! replace "$WORK/tree/$file" "${mutations[i + 2]}" "${mutations[i + 3]}"; then
		report+=("$(printf '%-30s %-11s %s' "$name" ERROR "does not apply")")
		status=1
		continue
	fi
	if ! build "$name"; then
		report+=("$(printf '%-30s %-11s %s' "$name" ERROR "does not build: $LOGS/$name.build.log")")
		status=1
	elif run_tests "$name" "$list"; then
		report+=("$(printf '%-30s %-11s %s' "$name" "NOT CAUGHT" "all of $list passed")")
		status=1
	else
		report+=("$(printf '%-30s %-11s %s' "$name" caught "$(failing_in "$LOGS/$name.log")")")
	fi
	tail -1 "$LOGS/$name.log"
	# A fresh mtime, so the next build compiles the original again.
	cp "$WORK/orig" "$WORK/tree/$file"
done

echo
printf '%-30s %-11s %s\n' mutation verdict "failing test files (logs: $LOGS)"
printf '%s\n' "${report[@]}"
exit $status
