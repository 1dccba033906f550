#!/usr/bin/env bash
# tests/bench/valgrind_smoke.sh - runs relayd (master and every worker)
# under valgrind memcheck through a representative session and prints each
# process's error and leak summary. Not part of `make test` (slow).
#
# Traffic: plain relaying, STARTTLS + AUTH PLAIN on submission, smtps + AUTH
# LOGIN, a failed login, a recipient the next hop refuses (-> bounce), mail
# to a dead route (-> deferred), mail to a domain reached by MX lookup
# (dnsmasq), sessions that end badly; delivery to a smarthost over STARTTLS
# with AUTH, spaced by a rate= (some wait in delivery, some in the queue);
# then relayctl status/queue [--summary]/show/stats/route/hold/release/
# flush/delete, a reload, /metrics scraped (and HTTP peers that ask for
# something else, or leave a request half sent), SIGTERM.
#
# Usage: bash tests/bench/valgrind_smoke.sh [BIN]   (default bin, from `make`)
# Exit 0 when every process reported 0 errors and no definite leak, and /metrics answered.
set -u
cd "$(dirname "$0")/../.."
BIN=${1:-bin}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/relayd-vg.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
}
trap cleanup EXIT

port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SMTP=$(port); SUB=$(port); SMTPS=$(port); SINK=$(port); MX=$(port); DEAD=$(port); DNS=$(port)
METRICS=$(port)

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 >/dev/null 2>&1
printf 'alice:%s\n' "$(echo alice-secret | openssl passwd -6 -stdin)" >"$T/users"
echo "relay-user relay-pass" >"$T/smarthost-auth"
mkdir "$T/state"

# The smarthost (STARTTLS, AUTH) and the MX: aiosmtpd fakes from the tests.
cat >"$T/fakes.py" <<EOF
import sys, time
sys.path.insert(0, "tests/integration")
from fakes.dlv_mx import FakeMX
sink = FakeMX("127.0.0.1", $SINK, tls_cert=("$T/cert.pem", "$T/key.pem"),
              auth={"relay-user": "relay-pass"}, rcpt={"refused": "550 5.1.1 No such user"})
mx = FakeMX("127.0.0.1", $MX)
print("ready", flush=True)
while True:
    time.sleep(1)
    print("sink=%d mx=%d" % (len(sink.messages), len(mx.messages)), file=open("$T/counts", "w"))
EOF
$PY "$T/fakes.py" >"$T/fakes.log" 2>&1 &
pids+=($!)
dnsmasq --no-daemon --port="$DNS" --listen-address=127.0.0.1 --bind-interfaces --no-resolv \
	--no-hosts --conf-file=/dev/null --pid-file= --local=/test/ \
	--mx-host=mx.test,mail.mx.test,10 --host-record=mail.mx.test,127.0.0.1 >/dev/null 2>&1 &
pids+=($!)

cat >"$T/relayd.conf" <<EOF
hostname relayd.test
state-dir $T/state
listen 127.0.0.1:$SMTP smtp
listen 127.0.0.1:$SUB submission
listen 127.0.0.1:$SMTPS smtps
tls-cert $T/cert.pem
tls-key $T/key.pem
tls-ca-file $T/cert.pem
auth-users $T/users
dns-server 127.0.0.1:$DNS
delivery-port $MX
smarthost [127.0.0.1]:$SINK tls=starttls auth=$T/smarthost-auth rate=120/m
metrics-listen 127.0.0.1:$METRICS
route dead.test [127.0.0.1]:$DEAD tls=none
route mx.test mx.test:$MX tls=may
retry-min 1h
EOF
"$BIN/relayd" -n -f "$T/relayd.conf" || exit 1

valgrind --trace-children=yes --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite --error-exitcode=99 --track-fds=no \
	--log-file="$T/vg.%p" "$BIN/relayd" -d -v -f "$T/relayd.conf" >"$T/relayd.log" 2>&1 &
master=$!

wait_for() {	# wait_for SECONDS COMMAND...
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && { echo "timed out: $*"; return 1; }
		sleep 0.5
	done
}
wait_for 120 test -S "$T/state/control.sock" || exit 1
wait_for 60 bash -c "echo >/dev/tcp/127.0.0.1/$SMTP" || exit 1
grep -q ready "$T/fakes.log" || wait_for 20 grep -q ready "$T/fakes.log" || exit 1

sw() { swaks --timeout 60 --server 127.0.0.1 --from sender@client.test --h-Subject vg "$@" \
	>>"$T/swaks.log" 2>&1 || echo "swaks $* failed (rc $?)"; }
sw --port "$SMTP" --to a@remote.example
sw --port "$SMTP" --to a@remote.example,b@remote.example,refused@remote.example
sw --port "$SMTP" --to x@dead.test,y@mx.test
sw --port "$SUB" -tls --auth PLAIN --auth-user alice --auth-password alice-secret --to c@remote.example
sw --port "$SMTPS" --tlsc --auth LOGIN --auth-user alice --auth-password alice-secret --to d@remote.example
swaks --timeout 60 --server 127.0.0.1 --port "$SUB" -tls --auth PLAIN --auth-user alice \
	--auth-password wrong --to e@remote.example >>"$T/swaks.log" 2>&1	# 535 expected

# Sessions that end badly: garbage and bare LF, a drop in DATA, a drop in a
# TLS handshake; one connection stays open across SIGTERM (freed at exit).
cat >"$T/rude.py" <<EOF
import socket, time
def conn(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.recv(512)
    return s
s = conn($SMTP)
s.sendall(b"EHLO rude\r\nFOO bar\r\nMAIL FROM:<a@b>\nRCPT TO:<x@remote.example>\r\n" + b"x" * 3000 + b"\r\n")
time.sleep(1); s.close()
s = conn($SMTP)
s.sendall(b"EHLO rude\r\nMAIL FROM:<a@client.test>\r\nRCPT TO:<x@remote.example>\r\nDATA\r\n")
time.sleep(1); s.sendall(b"Subject: cut\r\n\r\n" + b"y" * 100000); time.sleep(0.5); s.close()
s = conn($SUB)
s.sendall(b"EHLO rude\r\nSTARTTLS\r\n"); time.sleep(1); s.sendall(b"\x16\x03\x01\x02\x00\x01"); s.close()
t = socket.create_connection(("127.0.0.1", $SMTPS), timeout=30)
t.sendall(b"not tls\r\n"); time.sleep(0.5); t.close()
idle = conn($SMTP)
idle.sendall(b"EHLO idle\r\nMAIL FROM:<a@client.test>\r\n")
open("$T/rude.done", "w").close()
time.sleep(600)
EOF
$PY "$T/rude.py" >"$T/rude.log" 2>&1 &
pids+=($!)
wait_for 60 test -e "$T/rude.done"

ctl() {	# relayctl under memcheck too
	echo "\$ relayctl $*" >>"$T/ctl.log"
	valgrind --leak-check=full --errors-for-leak-kinds=definite --log-file="$T/vgctl.%p" \
		"$BIN/relayctl" -f "$T/relayd.conf" "$@" >>"$T/ctl.log" 2>&1
}
# 4 to the smarthost and the bounce for refused@, 1 to the MX.
wait_for 120 grep -q 'sink=5 mx=1' "$T/counts" || cat "$T/counts"
ctl status; ctl queue; ctl queue --json; ctl queue --summary; ctl queue --summary --json
ctl stats; ctl stats --json
ctl route a@remote.example; ctl route x@dead.test; ctl route y@mx.test
qid=$("$BIN/relayctl" -f "$T/relayd.conf" queue --json | $PY -c \
	'import json,sys; q=json.load(sys.stdin); print(q[0].get("qid") or q[0].get("id") if q else "")')
if [ -n "$qid" ]; then
	ctl show "$qid"; ctl hold "$qid"; ctl release "$qid"; ctl flush "$qid"; ctl flush
	ctl show NOSUCHQID; ctl delete "$qid"
fi
ctl reload
sleep 2
ctl status; ctl delete all; ctl queue

# The metrics endpoint: a scrape (once a poll has come back from every
# worker), then peers that ask for another path or method, and one that
# stays half sent across SIGTERM.
cat >"$T/scrape.py" <<EOF
import http.client, socket, time
def get(method, path):
    c = http.client.HTTPConnection("127.0.0.1", $METRICS, timeout=30)
    c.request(method, path)
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    return r.status, body
end = time.time() + 60
while True:
    status, body = get("GET", "/metrics")
    if "relayd_recipients_delivered_total" in body and "relayd_connections_out_total" in body:
        break
    if time.time() > end:
        raise SystemExit("no figures from every worker in /metrics")
    time.sleep(0.5)
print("scrape", status, len(body.splitlines()), "lines")
print("other path", get("GET", "/nope")[0], "POST", get("POST", "/metrics")[0])
half = socket.create_connection(("127.0.0.1", $METRICS), timeout=30)
half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
open("$T/scrape.done", "w").close()
time.sleep(600)
EOF
$PY "$T/scrape.py" >"$T/scrape.log" 2>&1 &
pids+=($!)
scrape_rc=0
wait_for 90 test -e "$T/scrape.done" || scrape_rc=1
cat "$T/scrape.log"

kill -TERM "$master"
wait "$master"
echo "relayd (under valgrind) exited $?"
sleep 1

rc=$scrape_rc
for f in "$T"/vg.* "$T"/vgctl.*; do
	role=$(sed -n 's/^==[0-9]*== Command: //p' "$f" | head -1)
	errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
	lost=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1)
	echo "$(basename "$f"): errors=${errs:-?} definitely_lost=${lost:-0} $role" | cut -c1-150
	[ "${errs:-1}" = 0 ] && [ "${lost:-0}" = 0 ] || rc=1
done
echo "logs in $T (relayd.log, ctl.log, swaks.log, scrape.log, vg.*)"
exit $rc
