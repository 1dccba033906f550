#!/usr/bin/env bash
# tests/deb/test.sh - the package test (`make deb-test`, not part of `make
# test`: about 1.5 minutes with a cached chroot, 2 without, on 2 cores). It builds
# the packages from a git clone of the repository (what is committed, as
# CI would see it), installs them with dpkg -i into a Debian 12 chroot made
# by debootstrap (so this machine's own MTA, users and units are never
# touched), checks what the package promises, runs the installed relayd
# in a private network namespace, then removes and purges the packages.
#
# One line per check ("ok NAME" or "FAIL NAME: why"), then "N passed, N
# failed"; exit status 0 only when nothing failed. Needs root (chroot,
# unshare), debootstrap, and Debian's package mirror for the chroot.
#
#   DEB_TEST_CACHE   the minbase chroot as a tarball, made once (default
#                    /var/cache/relayd/deb-test-bookworm.tar)
#   DEB_TEST_MIRROR  Debian mirror (default http://deb.debian.org/debian)
#   DEB_TEST_KEEP=1  keep the temporary directory (clone, packages, chroot)
set -u
cd "$(dirname "$0")/../.."
TOP=$PWD
CACHE=${DEB_TEST_CACHE:-/var/cache/relayd/deb-test-bookworm.tar}
MIRROR=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}

# In the chroot, with a clean environment.
inroot() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# --- the part run inside `unshare --mount --net`: relayd as installed ---------
# Its own network namespace (only lo), pid namespace and /proc: nothing it
# listens on or sends reaches this machine's network, no process outlives
# the namespace's first one, and the mount goes with the namespace.
if [ "${1:-}" = --run-relayd ]; then
	ROOT=$2
	ip link set lo up && mount -t proc proc "$ROOT/proc" || exit 1
	# Not through inroot: a function put in the background is a subshell,
	# and $! must be relayd itself (chroot and env exec it).
	chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		/usr/sbin/relayd -d 2>"$ROOT/tmp/relayd.log" &
	master=$!
	for _ in $(seq 100); do
		inroot relayctl status >"$ROOT/tmp/status.out" 2>&1 && break
		sleep 0.1
	done
	# As cron would: /usr/sbin/sendmail, from an unprivileged user.
	printf 'Subject: deb-test\n\nfrom the installed package\n' |
		inroot setpriv --reuid=nobody --regid=nogroup --clear-groups \
			/usr/sbin/sendmail -i someone@example.org
	for _ in $(seq 100); do
		inroot mailq >"$ROOT/tmp/mailq.out" 2>&1 && grep -q someone@example.org "$ROOT/tmp/mailq.out" && break
		sleep 0.1
	done
	kill -TERM "$master"
	rc=0
	wait "$master" || rc=$?
	echo "$rc" >"$ROOT/tmp/relayd.rc"
	# Leaving pid 1 of the namespace ends anything left in it.
	exit 0
fi

# --- checks ------------------------------------------------------------------
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	local name=$1
	shift
	if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(echo "$out" | tail -3 | tr '\n' ' ')"; fi
}
finish() {
	echo "deb-test took $(($(date +%s) - START)) s"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
}
# stat_is PATH 'OWNER:GROUP MODE' in the chroot.
stat_is() {
	local got
	got=$(inroot stat -c '%U:%G %a' "$1" 2>&1)
	[ "$got" = "$2" ] || { echo "$1 is $got, want $2"; return 1; }
}

# system_user NAME: in the chroot's passwd, uid < 1000, shell nologin.
system_user() {
	local e uid shell
	e=$(inroot getent passwd "$1") || { echo "no user $1"; return 1; }
	uid=$(echo "$e" | cut -d: -f3)
	shell=$(echo "$e" | cut -d: -f7)
	[ "$uid" -lt 1000 ] && [ "$shell" = /usr/sbin/nologin ] || { echo "$e"; return 1; }
}

[ "$(id -u)" = 0 ] || { echo "deb-test needs root (chroot, unshare)"; exit 2; }
START=$(date +%s)
TMP=$(mktemp -d /var/tmp/relayd-deb-test.XXXXXX)
if [ "${DEB_TEST_KEEP:-}" = 1 ]; then echo "keeping $TMP"; else trap 'rm -rf "$TMP"' EXIT; fi
ROOT=$TMP/root
OUT=$TMP/out

# 1. Build from a clean clone: what is committed, nothing of the work tree.
git clone -q "$TOP" "$TMP/src" || { fail clone "git clone $TOP"; finish; }
if bash "$TMP/src/tests/deb/build.sh" "$TMP/src" "$OUT"; then
	ok "build: dpkg-buildpackage -b and lintian without errors"
else
	fail build "see above"
	finish
fi
DEB=$(ls "$OUT"/relayd_*_*.deb)
MTA=$(ls "$OUT"/relayd-mta_*_all.deb)
check "relayd.deb leaves /usr/sbin/sendmail to the system's MTA" \
	bash -c "! dpkg-deb -c '$DEB' | grep -q ' ./usr/sbin/sendmail'"

# 2. The chroot: a cached debootstrap minbase, unpacked afresh each run.
if [ ! -s "$CACHE" ]; then
	echo "making the chroot cache $CACHE (debootstrap, once)"
	mkdir -p "$(dirname "$CACHE")" "$TMP/base"
	if ! debootstrap --variant=minbase bookworm "$TMP/base" "$MIRROR" >"$TMP/debootstrap.log" 2>&1; then
		tail -5 "$TMP/debootstrap.log"
		fail chroot "debootstrap failed (log above)"
		finish
	fi
	{
		echo "deb $MIRROR bookworm main"
		echo "deb $MIRROR bookworm-updates main"
		echo "deb ${MIRROR%/debian}/debian-security bookworm-security main"
	} >"$TMP/base/etc/apt/sources.list"
	cp /etc/resolv.conf "$TMP/base/etc/resolv.conf"
	chroot "$TMP/base" apt-get update -qq && chroot "$TMP/base" apt-get clean &&
		tar -C "$TMP/base" -cf "$CACHE.new" . && mv "$CACHE.new" "$CACHE" ||
		{ fail chroot "apt-get update in the new chroot failed"; finish; }
	rm -rf "$TMP/base"
fi
mkdir "$ROOT" && tar -C "$ROOT" -xf "$CACHE" && cp /etc/resolv.conf "$ROOT/etc/resolv.conf" ||
	{ fail chroot "unpacking $CACHE"; finish; }

# The libraries dpkg -i will want, from relayd's own Depends.
deps=$(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/[(|].*//' | xargs)
if ! inroot apt-get install -y -qq --no-install-recommends $deps >"$TMP/apt.log" 2>&1; then
	inroot apt-get update -qq >/dev/null 2>&1
	inroot apt-get install -y -qq --no-install-recommends $deps >"$TMP/apt.log" 2>&1 ||
		{ tail -5 "$TMP/apt.log"; fail chroot "installing $deps"; finish; }
fi

# 3. dpkg -i relayd.
cp "$DEB" "$MTA" "$ROOT/tmp/"
check "dpkg -i relayd" inroot dpkg -i "/tmp/$(basename "$DEB")"
check "relayd in /usr/sbin, 0755" stat_is /usr/sbin/relayd "root:root 755"
check "relayd-sendmail in /usr/sbin, 0755" stat_is /usr/sbin/relayd-sendmail "root:root 755"
check "relayctl in /usr/bin, 0755" stat_is /usr/bin/relayctl "root:root 755"
for page in man8/relayd.8 man5/relayd.conf.5 man8/relayctl.8 man8/relayd-sendmail.8; do
	check "man page $page" test -s "$ROOT/usr/share/man/$page.gz"
done
check "/etc/relayd/relayd.conf, 0644" stat_is /etc/relayd/relayd.conf "root:root 644"
check "/etc/relayd/relayd.conf is a conffile" grep -qx /etc/relayd/relayd.conf "$ROOT/var/lib/dpkg/info/relayd.conffiles"
check "relayd.conf: queue in /var/spool/relayd" grep -qx 'state-dir /var/spool/relayd' "$ROOT/etc/relayd/relayd.conf"
check "relayd.conf: workers as relayd" grep -qx 'user relayd' "$ROOT/etc/relayd/relayd.conf"
check "unit in /lib/systemd/system" grep -qx 'ExecStart=/usr/sbin/relayd -F' "$ROOT/lib/systemd/system/relayd.service"
# The only unit action postinst may take is try-restart (an upgrade of a
# running relayd); dh's start snippet says `deb-systemd-invoke $_dh_action`.
check "postinst starts no unit" bash -c "! dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./postinst | grep -E 'deb-systemd-invoke|systemctl +(start|restart|enable)' | grep -v 'deb-systemd-invoke try-restart'"
check "an upgrade does not stop relayd (no preinst stop)" bash -c "! dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./preinst 2>/dev/null | grep -q 'invoke stop'"
check "unit not enabled" bash -c "! ls '$ROOT'/etc/systemd/system/*/relayd.service 2>/dev/null | grep -q ."
check "user relayd: system uid, no login" system_user relayd
check "group relayd" inroot getent group relayd
check "/var/spool/relayd: relayd:relayd 0711" stat_is /var/spool/relayd "relayd:relayd 711"
check "no /usr/sbin/sendmail without relayd-mta" bash -c "[ ! -e '$ROOT/usr/sbin/sendmail' ]"
check "relayd -n on the installed config" inroot relayd -n
check "relayctl usage error is exit 2" bash -c "chroot '$ROOT' relayctl no-such-command; [ \$? = 2 ]"

# 4. relayd-mta: the system's sendmail.
check "dpkg -i relayd-mta" inroot dpkg -i "/tmp/$(basename "$MTA")"
check "/usr/sbin/sendmail is relayd-sendmail" bash -c "[ \"\$(readlink -f '$ROOT/usr/sbin/sendmail')\" = '$ROOT/usr/sbin/relayd-sendmail' ]"
check "/usr/bin/mailq is relayd-sendmail" bash -c "[ \"\$(readlink -f '$ROOT/usr/bin/mailq')\" = '$ROOT/usr/sbin/relayd-sendmail' ]"
for page in man8/sendmail.8 man1/mailq.1 man8/newaliases.8; do
	check "man page $page is relayd-sendmail's" bash -c "[ \"\$(readlink -f '$ROOT/usr/share/man/$page.gz')\" = '$ROOT/usr/share/man/man8/relayd-sendmail.8.gz' ]"
done

# 5. The installed relayd runs: started by hand (no systemd in a chroot),
# it takes the spool as postinst made it, takes a message from sendmail,
# lists it in mailq and stops cleanly on SIGTERM.
timeout 60 unshare --pid --mount --net --fork bash "$TOP/tests/deb/test.sh" --run-relayd "$ROOT"
check "relayd -d started, relayctl status answered" grep -q . "$ROOT/tmp/status.out"
check "sendmail as nobody queued a message, mailq lists it" grep -q someone@example.org "$ROOT/tmp/mailq.out"
check "relayd stopped with exit 0 on SIGTERM" bash -c "grep -qx 0 '$ROOT/tmp/relayd.rc' || { echo exit status: \$(cat '$ROOT/tmp/relayd.rc'); false; }"
# The integration harness's TROUBLE_RE: a process of relayd died or gave up.
check "no worker death or fatal line in relayd's log" bash -c "! grep -P 'worker killed by signal|worker exited with status (?!0\\b)\\d+|restarting|worker did not stop|does not answer|fatal:' '$ROOT/tmp/relayd.log'"
check "/var/spool/relayd still relayd:relayd 0711 after a run" stat_is /var/spool/relayd "relayd:relayd 711"
check "queue.db belongs to relayd, 0600" stat_is /var/spool/relayd/queue.db "relayd:relayd 600"
check "maildrop made by relayd: 3733" stat_is /var/spool/relayd/maildrop "relayd:relayd 3733"
[ "$failed" = 0 ] || { echo "--- relayd's log"; tail -20 "$ROOT/tmp/relayd.log"; }

# 6. dpkg -i again (an upgrade to the same version): the admin's edit of
# the conffile and the queue stay.
echo '# edited by the admin' >>"$ROOT/etc/relayd/relayd.conf"
check "dpkg -i relayd over itself" inroot dpkg -i "/tmp/$(basename "$DEB")"
check "conffile edit kept over an upgrade" grep -qx '# edited by the admin' "$ROOT/etc/relayd/relayd.conf"
check "queue kept over an upgrade" stat_is /var/spool/relayd/queue.db "relayd:relayd 600"

# 7. Remove keeps the conffile and the queue; purge takes them.
check "dpkg -r relayd-mta relayd" inroot dpkg -r relayd-mta relayd
check "binaries gone after remove" bash -c "[ ! -e '$ROOT/usr/sbin/relayd' ] && [ ! -e '$ROOT/usr/sbin/sendmail' ]"
check "conffile kept after remove" test -f "$ROOT/etc/relayd/relayd.conf"
check "queue kept after remove" test -f "$ROOT/var/spool/relayd/queue.db"
check "dpkg --purge relayd-mta relayd" inroot dpkg --purge relayd-mta relayd
check "conffile gone after purge" bash -c "[ ! -e '$ROOT/etc/relayd' ]"
check "spool gone after purge" bash -c "[ ! -e '$ROOT/var/spool/relayd' ]"
check "unit gone after purge" bash -c "[ ! -e '$ROOT/lib/systemd/system/relayd.service' ]"
check "dpkg knows no relayd" bash -c "! chroot '$ROOT' dpkg -s relayd >/dev/null 2>&1"
check "user relayd kept (Debian leaves system users)" inroot getent passwd relayd
finish
