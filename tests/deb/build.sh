#!/usr/bin/env bash
# tests/deb/build.sh - builds the Debian packages (`make deb`) from a copy
# of a source tree, so that the tree gets none of debhelper's litter, then
# checks them with lintian: any error fails the build, warnings are shown.
#
# Usage: tests/deb/build.sh SRC OUT
#   SRC  a source tree (its tracked and untracked, not ignored, files are
#        copied; a git clone for `make deb-test`, the work tree for `make deb`)
#   OUT  emptied, then holds src/ (the copy), the .deb files, .changes,
#        .buildinfo, build.log and lintian.log
# Exit status 0 when the packages are built and lintian reports no error.
set -eu -o pipefail
[ $# = 2 ] || { echo "usage: $0 SRC OUT" >&2; exit 2; }
SRC=$(cd "$1" && pwd)
mkdir -p "$2"
OUT=$(cd "$2" && pwd)
rm -rf "${OUT:?}"/*
mkdir "$OUT/src"

# The files git knows of (a tracked file deleted in the tree is skipped).
git -C "$SRC" ls-files -z --cached --others --exclude-standard |
	(cd "$SRC" && while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done) |
	tar -C "$SRC" --null -T - -cf - | tar -C "$OUT/src" -xf -

cd "$OUT/src"
# Build-Depends are those of debian/control; apt-get finds them there.
if ! dpkg-checkbuilddeps 2>/dev/null; then
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq ./ >/dev/null
	else
		dpkg-checkbuilddeps   # says what is missing
	fi
fi
echo "building in $OUT/src (log: $OUT/build.log)"
if ! dpkg-buildpackage -b -us -uc >"$OUT/build.log" 2>&1; then
	tail -30 "$OUT/build.log"
	echo "dpkg-buildpackage failed (log: $OUT/build.log)"
	exit 1
fi
cd "$OUT"
ls -1 ./*.deb
# --fail-on error: warnings are printed, only errors fail.
if ! lintian --fail-on error --info ./*.changes >lintian.log 2>&1; then
	cat lintian.log
	echo "lintian reports errors (log: $OUT/lintian.log)"
	exit 1
fi
echo "lintian: $(grep -c '^E:' lintian.log || true) errors, $(grep -c '^W:' lintian.log || true) warnings (log: $OUT/lintian.log)"
grep -E '^(E|W):' lintian.log || true
