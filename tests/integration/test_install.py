"""test_install.py - `make install DESTDIR=... PREFIX=/usr` (issue 8,
point 5) puts the programs where the README and the Makefile say, with
their modes: relayd and relayd-sendmail in PREFIX/sbin and relayctl in
PREFIX/bin (0755), the
example configuration as /etc/relayd/relayd.conf.example (0644), all under
DESTDIR; the installed relayd checks the installed example with `-n`.
Issue 14: the man pages go to PREFIX/share/man/man5 and man8 (0644), where
man(1) finds them; the systemd unit to PREFIX/lib/systemd/system (0644)
with ExecStart at PREFIX/sbin/relayd; the state directory
/var/spool/relayd is made 0700 (the unit's ReadWritePaths= needs it).

The binaries are the ones the suite runs (BIN); `-o all` keeps make from
rebuilding them here (under `make sanitize` they are the sanitizer build,
which a plain rebuild would overwrite).

Run: cd tests/integration && /usr/bin/python3 -m unittest -v test_install
"""
import filecmp
import glob
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

from harness import BIN, TOP

EXPECTED = {
    "usr/sbin/relayd": (0o755, os.path.join(BIN, "relayd")),
    "usr/bin/relayctl": (0o755, os.path.join(BIN, "relayctl")),
    "usr/sbin/relayd-sendmail": (0o755, os.path.join(BIN, "sendmail")),
    "etc/relayd/relayd.conf.example": (0o644, os.path.join(TOP, "etc", "relayd.conf")),
    # With PREFIX=/usr the unit is the file of the tree as it is.
    "usr/lib/systemd/system/relayd.service": (0o644, os.path.join(TOP, "etc", "relayd.service")),
}
# sendmail.8 goes in as relayd-sendmail.8, the program's name: the system
# MTA's sendmail(8) stays (relayd-mta links it, as it links the program).
_AS = {"sendmail.8": "relayd-sendmail.8"}
for _page in glob.glob(os.path.join(TOP, "man", "*.[58]")):
    _name = os.path.basename(_page)
    EXPECTED["usr/share/man/man%s/%s" % (_page[-1], _AS.get(_name, _name))] = (0o644, _page)


def make_install(dest, prefix):
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(
        ["make", "-C", TOP, "-o", "all", "install", "DESTDIR=" + dest, "PREFIX=" + prefix,
         "BIN=" + os.path.relpath(BIN, TOP)],
        capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)


class Install(unittest.TestCase):
    def setUp(self):
        self.dest = tempfile.mkdtemp(prefix="relayd-install-")
        self.addCleanup(shutil.rmtree, self.dest, True)
        self.make = make_install(self.dest, "/usr")
        self.assertEqual(self.make.returncode, 0, self.make.stdout + self.make.stderr)

    def test_files_and_modes(self):
        for rel, (mode, source) in EXPECTED.items():
            with self.subTest(path=rel):
                path = os.path.join(self.dest, rel)
                st = os.lstat(path)
                self.assertTrue(stat.S_ISREG(st.st_mode), rel)
                self.assertEqual(stat.S_IMODE(st.st_mode), mode, rel)
                self.assertTrue(filecmp.cmp(path, source, shallow=False),
                                "%s is not a copy of %s" % (rel, source))
        # Nothing escaped DESTDIR into PREFIX itself.
        for rel in EXPECTED:
            self.assertFalse(os.path.exists(os.path.join(self.dest, "usr", "usr", rel)))

    def test_man_pages_and_state_dir(self):
        pages = [rel for rel in EXPECTED if rel.startswith("usr/share/man/")]
        self.assertGreaterEqual(len(pages), 3, pages)
        for name, sec in (("relayd", "8"), ("relayd.conf", "5"), ("relayctl", "8"),
                          ("relayd-sendmail", "8")):
            self.assertIn("usr/share/man/man%s/%s.%s" % (sec, name, sec), pages)
        self.assertFalse(os.path.exists(os.path.join(self.dest, "usr/share/man/man8/sendmail.8")))
        spool = os.path.join(self.dest, "var/spool/relayd")
        st = os.lstat(spool)
        self.assertTrue(stat.S_ISDIR(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o711)

    @unittest.skipUnless(shutil.which("man"), "man(1) is not installed")
    def test_man_finds_the_pages(self):
        env = dict(os.environ, MANPATH=os.path.join(self.dest, "usr/share/man"))
        for name, sec in (("relayd", "8"), ("relayd.conf", "5"), ("relayctl", "8"),
                          ("relayd-sendmail", "8")):
            with self.subTest(page=name):
                p = subprocess.run(["man", "-w", sec, name], capture_output=True, text=True,
                                   timeout=30, env=env)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.strip(), os.path.join(
                    self.dest, "usr/share/man/man%s/%s.%s" % (sec, name, sec)))

    def test_unit_follows_prefix(self):
        dest = tempfile.mkdtemp(prefix="relayd-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        p = make_install(dest, "/opt/relayd")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(dest, "opt/relayd/lib/systemd/system/relayd.service")) as f:
            lines = f.read().splitlines()
        self.assertIn("ExecStart=/opt/relayd/sbin/relayd -F", lines)
        self.assertTrue(os.access(os.path.join(dest, "opt/relayd/sbin/relayd"), os.X_OK))
        self.assertTrue(os.path.isfile(os.path.join(dest, "opt/relayd/share/man/man5/relayd.conf.5")))

    def test_installed_relayd_checks_the_installed_example(self):
        relayd = os.path.join(self.dest, "usr/sbin/relayd")
        example = os.path.join(self.dest, "etc/relayd/relayd.conf.example")
        p = subprocess.run([relayd, "-n", "-f", example], capture_output=True, text=True,
                           timeout=30, cwd=self.dest)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # And it is a checker, not a starter: a broken copy is refused with FILE:LINE.
        broken = os.path.join(self.dest, "broken.conf")
        with open(example) as f, open(broken, "w") as g:
            g.write(f.read() + "no-such-directive 1\n")
        p = subprocess.run([relayd, "-n", "-f", broken], capture_output=True, text=True,
                           timeout=30, cwd=self.dest)
        self.assertEqual(p.returncode, 1)
        self.assertRegex(p.stderr, r"%s:\d+: .*unknown directive" % broken)
        relayctl = os.path.join(self.dest, "usr/bin/relayctl")
        p = subprocess.run([relayctl, "no-such-command"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
